import CMPI
func _probe() -> Int32 { var r: Int32 = 0; MPI_Comm_rank(elbo_mpi_comm_world(), &r); return r }
