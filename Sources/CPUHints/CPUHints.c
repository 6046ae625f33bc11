// The header holds everything (one inline function); SwiftPM needs a source file per C target.
#include "CPUHints.h"
