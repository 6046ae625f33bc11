// The CBLAS interface of OpenBLAS plus its threading controls.
// Debian installs cblas.h under the openblas-pthread include directory that pkg-config names.
#include <cblas.h>
