// The BLAS/LAPACK C surface. Headers come from pkg-config (openblas) and liblapacke-dev.
#include <cblas.h>
#include <lapacke.h>
// OpenBLAS runtime introspection (declared in cblas.h on OpenBLAS builds).
