// Planner: layouts of a model on a cluster (issue "Hardware catalog and the sharding planner").
// Not built yet; the target exists so that the package layout matches DESIGN.md.
