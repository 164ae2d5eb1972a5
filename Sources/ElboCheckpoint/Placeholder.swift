import CHDF5
func _probe() -> hid_t { elbo_h5p_file_access() }
