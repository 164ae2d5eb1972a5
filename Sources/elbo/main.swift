import CMPI
import COpenBLAS
MPI_Init(nil, nil)
var r: Int32 = 0; var s: Int32 = 0
MPI_Comm_rank(elbo_mpi_comm_world(), &r); MPI_Comm_size(elbo_mpi_comm_world(), &s)
print("rank \(r) of \(s), openblas threads \(openblas_get_num_threads())")
MPI_Finalize()
