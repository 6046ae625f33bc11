// Runtime: the scaled-down model that runs on the CPU (issue "CPU runtime"). Not built yet; the
// target exists so that the package layout matches DESIGN.md and nothing depends on it.
