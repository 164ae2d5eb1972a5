// Parallel HDF5 (the OpenMPI build). Property-list classes, native types and flags such as
// H5F_ACC_TRUNC are macros over globals that only exist after H5open(); Swift cannot import them,
// so each is exposed as a function that calls H5open() first.
#ifndef ELBO_CHDF5_SHIM_H
#define ELBO_CHDF5_SHIM_H
#include <mpi.h>
#include <hdf5.h>

static inline hid_t elbo_h5p_file_access(void) { H5open(); return H5P_FILE_ACCESS; }
static inline hid_t elbo_h5p_file_create(void) { H5open(); return H5P_FILE_CREATE; }
static inline hid_t elbo_h5p_dataset_xfer(void) { H5open(); return H5P_DATASET_XFER; }
static inline hid_t elbo_h5p_dataset_create(void) { H5open(); return H5P_DATASET_CREATE; }
static inline hid_t elbo_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t elbo_h5s_all(void) { return H5S_ALL; }
static inline hid_t elbo_h5t_native_float(void) { H5open(); return H5T_NATIVE_FLOAT; }
static inline hid_t elbo_h5t_native_double(void) { H5open(); return H5T_NATIVE_DOUBLE; }
static inline hid_t elbo_h5t_native_int64(void) { H5open(); return H5T_NATIVE_INT64; }
static inline hid_t elbo_h5t_native_uint64(void) { H5open(); return H5T_NATIVE_UINT64; }
static inline hid_t elbo_h5t_native_uint32(void) { H5open(); return H5T_NATIVE_UINT32; }
static inline hid_t elbo_h5t_c_s1(void) { H5open(); return H5T_C_S1; }
static inline hid_t elbo_h5p_link_create(void) { H5open(); return H5P_LINK_CREATE; }
/// File (on-disk) types: explicit little-endian so the documented layout does not vary by host.
static inline hid_t elbo_h5t_ieee_f32le(void) { H5open(); return H5T_IEEE_F32LE; }
static inline hid_t elbo_h5t_ieee_f64le(void) { H5open(); return H5T_IEEE_F64LE; }
static inline hid_t elbo_h5t_std_i64le(void) { H5open(); return H5T_STD_I64LE; }
static inline hid_t elbo_h5t_std_u64le(void) { H5open(); return H5T_STD_U64LE; }
static inline hsize_t elbo_h5s_unlimited(void) { return H5S_UNLIMITED; }
static inline unsigned elbo_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned elbo_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned elbo_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned elbo_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline MPI_Comm elbo_h5_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Info elbo_h5_info_null(void) { return MPI_INFO_NULL; }
static inline H5FD_mpio_xfer_t elbo_h5fd_mpio_collective(void) { return H5FD_MPIO_COLLECTIVE; }
static inline H5FD_mpio_xfer_t elbo_h5fd_mpio_independent(void) { return H5FD_MPIO_INDEPENDENT; }
static inline size_t elbo_h5t_variable(void) { return H5T_VARIABLE; }
/// Turns off HDF5's automatic error-stack printing, so that a bad file gives our one-line error.
static inline void elbo_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
