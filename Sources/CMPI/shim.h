// OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are macros that expand to the
// addresses of global structs; Swift cannot import them, so each is exposed as a function.
#ifndef ELBO_CMPI_SHIM_H
#define ELBO_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm elbo_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm elbo_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype elbo_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype elbo_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype elbo_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype elbo_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype elbo_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype elbo_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype elbo_mpi_char(void) { return MPI_CHAR; }
static inline MPI_Op elbo_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op elbo_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op elbo_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op elbo_mpi_lor(void) { return MPI_LOR; }
static inline MPI_Op elbo_mpi_band(void) { return MPI_BAND; }
static inline MPI_Info elbo_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Request elbo_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *elbo_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline void *elbo_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int elbo_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Errhandler elbo_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int elbo_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int elbo_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int elbo_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int elbo_mpi_success(void) { return MPI_SUCCESS; }
static inline int elbo_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int elbo_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int elbo_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline MPI_Datatype elbo_mpi_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Datatype elbo_mpi_datatype_null(void) { return MPI_DATATYPE_NULL; }
#endif
