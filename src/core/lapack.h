/* lapack.h — the four LAPACK routines anamo calls, from OpenBLAS's own LAPACK.
 *
 * OpenBLAS carries LAPACK (every Debian libopenblas0 build does) and exports it through the
 * Fortran interface: sposv_, dsyevd_, dgesvd_, dgelsd_. anamo calls those directly rather than
 * through LAPACKE: Debian's liblapacke is built on the generic libblas.so.3 and liblapack.so.3,
 * so every run mapped those and libtmglib beside OpenBLAS (0.8 MiB resident, and a package) to
 * reach routines OpenBLAS already has.
 *
 * The row-major forms do what LAPACKE's do: refuse NaN in an input (as LAPACKE does unless told
 * not to), copy into column-major arrays, ask the routine for its optimal work space, call it,
 * copy back. The routine sees the same numbers in the same order, so results are the bits that
 * LAPACKE_… gave.
 *
 * Each returns LAPACK's info: 0 done; −i when argument i (of the LAPACKE call that has the
 * layout first) holds NaN; > 0 the routine's own failure; LAPACK_NO_MEMORY when a copy or the
 * work space cannot be allocated. */
#ifndef ANAMO_CORE_LAPACK_H
#define ANAMO_CORE_LAPACK_H

#define LAPACK_NO_MEMORY (-1010) /* LAPACKE's LAPACK_WORK_MEMORY_ERROR */

/* Solves A X = B: A (n × n, row-major, symmetric positive definite, its upper triangle read; on
 * return its Cholesky factor there), B (n × nrhs, row-major; on return X). sposv, uplo 'U'. */
int lapack_sposv_rows(int n, int nrhs, float *a, float *b);

/* A = V Λ Vᵀ for symmetric A (n × n, column-major, its lower triangle read): the eigenvalues
 * ascending in w (n), the eigenvectors in A's columns. dsyevd, jobz 'V', uplo 'L'. */
int lapack_dsyevd_cols(int n, double *a, double *w);

/* The singular values of A (m × n, row-major; overwritten) in s (min(m, n), decreasing), and,
 * where u is not NULL, the min(m, n) left singular vectors as the columns of u (m × min(m, n),
 * row-major). dgesvd, jobu 'S' (or 'N' when u is NULL), jobvt 'N'. */
int lapack_dgesvd_rows(int m, int n, double *a, double *s, double *u);

/* The minimum-norm x of min ‖A x − b‖: A (m × n, row-major; overwritten), b (max(m, n) values;
 * x in its first n), s (min(m, n)) A's singular values; singular values below rcond times the
 * largest count as zero, and *rank is how many do not. dgelsd, one right-hand side. */
int lapack_dgelsd_rows(int m, int n, double *a, double *b, double *s, double rcond, int *rank);

#endif
