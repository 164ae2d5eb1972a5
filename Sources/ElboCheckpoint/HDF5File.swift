import CHDF5
import ElboDistributed

/// An HDF5 identifier that is closed exactly once.
final class H5ID {
  private(set) var id: hid_t
  private let closer: (hid_t) -> herr_t

  init(_ id: hid_t, _ closer: @escaping (hid_t) -> herr_t) {
    self.id = id
    self.closer = closer
  }

  /// Closes the identifier; returns false if HDF5 reported an error.
  @discardableResult
  func close() -> Bool {
    guard id >= 0 else { return true }
    let rc = closer(id)
    id = -1
    return rc >= 0
  }

  deinit { close() }
}

/// Thin throwing wrappers over the HDF5 C API for one open file.
///
/// All calls must come from one thread (HDF5 1.10 is not thread-safe). In parallel mode the file
/// is opened through the MPI-IO driver on `MPI_COMM_WORLD`: every rank must then make the same
/// create/open/close calls with the same arguments (HDF5's metadata rule); only the *selections*
/// of raw-data writes differ between ranks. Raw-data writes are collective
/// (`H5FD_MPIO_COLLECTIVE`); reads are independent, so a rank never waits on another to read.
final class HDF5File {
  let path: String
  let parallel: Bool
  private let file: H5ID
  private let writeXfer: H5ID
  /// Link-creation list that creates missing intermediate groups ("params/enc/w").
  private let lcpl: H5ID

  private init(path: String, parallel: Bool, file: hid_t) throws {
    self.path = path
    self.parallel = parallel
    self.file = H5ID(file, H5Fclose)
    let x = H5Pcreate(elbo_h5p_dataset_xfer())
    writeXfer = H5ID(x, H5Pclose)
    if parallel && x >= 0 { H5Pset_dxpl_mpio(x, elbo_h5fd_mpio_collective()) }
    let l = H5Pcreate(elbo_h5p_link_create())
    lcpl = H5ID(l, H5Pclose)
    if l >= 0 { H5Pset_create_intermediate_group(l, 1) }
    guard x >= 0, l >= 0 else { throw fail("HDF5 could not create property lists") }
  }

  private static func accessList(parallel: Bool) -> H5ID {
    let fapl = H5Pcreate(elbo_h5p_file_access())
    if parallel && fapl >= 0 {
      H5Pset_fapl_mpio(fapl, elbo_h5_comm_world(), elbo_h5_info_null())
      // Collective metadata I/O: one rank reads/writes metadata and shares it (scales better).
      H5Pset_coll_metadata_write(fapl, true)
    }
    return H5ID(fapl, H5Pclose)
  }

  /// Creates a new file; fails if it exists (`H5F_ACC_EXCL`: nothing is overwritten).
  static func create(path: String, parallel: Bool) throws -> HDF5File {
    elbo_h5_silence_errors()
    let fapl = accessList(parallel: parallel)
    // A user block HDF5 never reads, for the seal rank 0 writes after closing (CheckpointSeal).
    let fcpl = H5ID(H5Pcreate(elbo_h5p_file_create()), H5Pclose)
    if fcpl.id >= 0 { H5Pset_userblock(fcpl.id, hsize_t(CheckpointSeal.userBlockBytes)) }
    let f = H5Fcreate(path, elbo_h5f_acc_excl(), fcpl.id, fapl.id)
    guard f >= 0 else {
      throw CheckpointError(path: path, message: "HDF5 could not create the file")
    }
    return try HDF5File(path: path, parallel: parallel, file: f)
  }

  /// Opens an existing file read-only.
  static func open(path: String, parallel: Bool) throws -> HDF5File {
    elbo_h5_silence_errors()
    let fapl = accessList(parallel: parallel)
    let f = H5Fopen(path, elbo_h5f_acc_rdonly(), fapl.id)
    guard f >= 0 else {
      throw CheckpointError(path: path, message: "not a readable Elbo checkpoint "
        + "(HDF5 cannot open it: missing, truncated or not HDF5)")
    }
    return try HDF5File(path: path, parallel: parallel, file: f)
  }

  /// Writes everything HDF5 holds to the file and asks the storage to make it durable:
  /// collective in parallel mode, where HDF5's MPI-IO driver calls `MPI_File_sync`, so that
  /// every rank's part — written from other nodes, too — is on disk, not just rank 0's.
  func flushToDisk() throws {
    try check(H5Fflush(file.id, H5F_SCOPE_GLOBAL), "HDF5 could not flush the file to disk")
  }

  /// Closes the file (collective in parallel mode), reporting a failed final flush.
  func close() throws {
    writeXfer.close()
    lcpl.close()
    if !file.close() { throw fail("HDF5 could not flush and close the file") }
  }

  func fail(_ message: String) -> CheckpointError { CheckpointError(path: path, message: message) }

  private func check(_ rc: herr_t, _ what: String) throws {
    if rc < 0 { throw fail(what) }
  }

  // MARK: Attributes on the root group

  private func writeRootAttribute(_ name: String, fileType: hid_t, memType: hid_t,
                                  _ bytes: UnsafeRawPointer) throws
  {
    let space = H5ID(H5Screate(H5S_SCALAR), H5Sclose)
    let attr = H5ID(H5Acreate2(file.id, name, fileType, space.id, elbo_h5p_default(),
                               elbo_h5p_default()), H5Aclose)
    guard space.id >= 0, attr.id >= 0 else { throw fail("cannot create attribute '\(name)'") }
    // Every rank writes the same value: HDF5 requires identical metadata on all ranks.
    try check(H5Awrite(attr.id, memType, bytes), "cannot write attribute '\(name)'")
  }

  func writeAttribute(_ name: String, int64 value: Int64) throws {
    var v = value
    try writeRootAttribute(name, fileType: elbo_h5t_std_i64le(), memType: elbo_h5t_native_int64(),
                           &v)
  }

  func writeAttribute(_ name: String, uint64 value: UInt64) throws {
    var v = value
    try writeRootAttribute(name, fileType: elbo_h5t_std_u64le(),
                           memType: elbo_h5t_native_uint64(), &v)
  }

  func writeAttribute(_ name: String, string value: String) throws {
    let type = try stringType(byteCount: value.utf8.count)
    let bytes = Array(value.utf8) + [0]
    try bytes.withUnsafeBytes { raw in
      guard let base = raw.baseAddress else { return }
      try writeRootAttribute(name, fileType: type.id, memType: type.id, base)
    }
  }

  /// A fixed-length UTF-8 string type (null-terminated) of at least one byte.
  private func stringType(byteCount: Int) throws -> H5ID {
    let t = H5ID(H5Tcopy(elbo_h5t_c_s1()), H5Tclose)
    guard t.id >= 0, H5Tset_size(t.id, max(1, byteCount) + 1) >= 0,
      H5Tset_cset(t.id, H5T_CSET_UTF8) >= 0, H5Tset_strpad(t.id, H5T_STR_NULLTERM) >= 0
    else { throw fail("HDF5 could not make a string type") }
    return t
  }

  private func openRootAttribute(_ name: String) throws -> H5ID {
    guard H5Aexists(file.id, name) > 0 else {
      throw fail("not a readable Elbo checkpoint (no root attribute '\(name)')")
    }
    let a = H5ID(H5Aopen(file.id, name, elbo_h5p_default()), H5Aclose)
    guard a.id >= 0 else { throw fail("not a readable Elbo checkpoint (bad attribute '\(name)')") }
    return a
  }

  /// Reads an integer root attribute as `type` (native int64 or uint64).
  func readIntegerAttribute<T: FixedWidthInteger>(_ name: String, as type: hid_t) throws -> T {
    let a = try openRootAttribute(name)
    var v: T = 0
    try check(H5Aread(a.id, type, &v),
              "not a readable Elbo checkpoint (attribute '\(name)' is not an integer)")
    return v
  }

  func readAttributeInt64(_ name: String) throws -> Int64 {
    try readIntegerAttribute(name, as: elbo_h5t_native_int64())
  }

  func readAttributeUInt64(_ name: String) throws -> UInt64 {
    try readIntegerAttribute(name, as: elbo_h5t_native_uint64())
  }

  func readAttributeString(_ name: String) throws -> String {
    let a = try openRootAttribute(name)
    let type = H5ID(H5Aget_type(a.id), H5Tclose)
    return try readString(type: type, what: "attribute '\(name)'") { mem, buf in
      H5Aread(a.id, mem, buf)
    }
  }

  /// Reads a scalar string stored either fixed-length (what Elbo writes) or variable-length
  /// (what h5py writes by default).
  private func readString(type: H5ID, what: String,
                          read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> String
  {
    guard type.id >= 0, H5Tget_class(type.id) == H5T_STRING else {
      throw fail("not a readable Elbo checkpoint (\(what) is not a string)")
    }
    // HDF5 does not convert between character sets: the memory type keeps the file's cset.
    let mem = H5ID(H5Tcopy(elbo_h5t_c_s1()), H5Tclose)
    H5Tset_cset(mem.id, H5Tget_cset(type.id))
    if H5Tis_variable_str(type.id) > 0 {
      H5Tset_size(mem.id, elbo_h5t_variable())
      var ptr: UnsafeMutablePointer<CChar>? = nil
      try check(read(mem.id, &ptr), "not a readable Elbo checkpoint (cannot read \(what))")
      guard let ptr else { return "" }
      defer { H5free_memory(ptr) }
      return String(cString: ptr)
    }
    let size = H5Tget_size(type.id)
    guard size > 0, size < 1 << 31 else {
      throw fail("not a readable Elbo checkpoint (\(what) has a bad size)")
    }
    H5Tset_size(mem.id, size + 1)
    H5Tset_strpad(mem.id, H5T_STR_NULLTERM)
    var buf = [UInt8](repeating: 0, count: size + 1)
    try buf.withUnsafeMutableBytes { raw in
      guard let base = raw.baseAddress else { return }
      try check(read(mem.id, base), "not a readable Elbo checkpoint (cannot read \(what))")
    }
    let end = buf.firstIndex(of: 0) ?? buf.count
    return String(decoding: buf[..<end], as: UTF8.self)
  }

  // MARK: Datasets

  /// Creates a dataset (and its missing parent groups). No fill values: every element is
  /// written right after, so filling would write the whole tensor twice.
  private func createDataset(_ name: String, fileType: hid_t, space: hid_t) throws -> H5ID {
    let dcpl = H5ID(H5Pcreate(elbo_h5p_dataset_create()), H5Pclose)
    guard dcpl.id >= 0 else { throw fail("HDF5 could not make a dataset property list") }
    H5Pset_fill_time(dcpl.id, H5D_FILL_TIME_NEVER)
    let d = H5ID(H5Dcreate2(file.id, name, fileType, space, lcpl.id, dcpl.id, elbo_h5p_default()),
                 H5Dclose)
    guard d.id >= 0 else { throw fail("cannot create dataset '/\(name)'") }
    return d
  }

  private func openDataset(_ name: String) throws -> H5ID {
    let d = H5ID(H5Dopen2(file.id, name, elbo_h5p_default()), H5Dclose)
    guard d.id >= 0 else { throw fail("not a readable Elbo checkpoint (no dataset '/\(name)')") }
    return d
  }

  /// Writes a whole small value from rank 0 alone (others select nothing), collectively.
  private func writeFromRoot(_ dset: H5ID, memType: hid_t, isRoot: Bool,
                             _ bytes: UnsafeRawPointer, _ name: String) throws
  {
    let fspace = H5ID(H5Dget_space(dset.id), H5Sclose)
    let mspace = H5ID(H5Scopy(fspace.id), H5Sclose)
    guard fspace.id >= 0, mspace.id >= 0 else { throw fail("cannot get the space of '/\(name)'") }
    if parallel && !isRoot {
      H5Sselect_none(fspace.id)
      H5Sselect_none(mspace.id)
    }
    try check(H5Dwrite(dset.id, memType, mspace.id, fspace.id, writeXfer.id, bytes),
              "cannot write dataset '/\(name)'")
  }

  /// A scalar UTF-8 string dataset (fixed length), written by rank 0.
  func writeStringDataset(_ name: String, _ value: String, isRoot: Bool) throws {
    let type = try stringType(byteCount: value.utf8.count)
    let space = H5ID(H5Screate(H5S_SCALAR), H5Sclose)
    let d = try createDataset(name, fileType: type.id, space: space.id)
    let bytes = Array(value.utf8) + [0]
    try bytes.withUnsafeBytes { raw in
      guard let base = raw.baseAddress else { return }
      try writeFromRoot(d, memType: type.id, isRoot: isRoot, base, name)
    }
  }

  func readStringDataset(_ name: String) throws -> String {
    let d = try openDataset(name)
    let type = H5ID(H5Dget_type(d.id), H5Tclose)
    return try readString(type: type, what: "dataset '/\(name)'") { mem, buf in
      H5Dread(d.id, mem, elbo_h5s_all(), elbo_h5s_all(), elbo_h5p_default(), buf)
    }
  }

  /// A float64 scalar dataset, written by rank 0.
  func writeDoubleScalar(_ name: String, _ value: Double, isRoot: Bool) throws {
    let space = H5ID(H5Screate(H5S_SCALAR), H5Sclose)
    let d = try createDataset(name, fileType: elbo_h5t_ieee_f64le(), space: space.id)
    var v = value
    try writeFromRoot(d, memType: elbo_h5t_native_double(), isRoot: isRoot, &v, name)
  }

  func readDoubleScalar(_ name: String) throws -> Double {
    let d = try openDataset(name)
    let (shape, _) = try extent(d, name)
    guard shape.reduce(1, *) == 1 else {
      throw fail("not a readable Elbo checkpoint ('/\(name)' is not a scalar)")
    }
    var v = 0.0
    try check(H5Dread(d.id, elbo_h5t_native_double(), elbo_h5s_all(), elbo_h5s_all(),
                      elbo_h5p_default(), &v),
              "not a readable Elbo checkpoint (cannot read '/\(name)')")
    return v
  }

  /// Creates a float32 dataset of `shape` and writes this rank's contiguous part
  /// `[part.lowerBound, part.upperBound)` of the flattened (row-major) tensor, collectively.
  func writeFloatTensor(_ name: String, shape: [Int], data: UnsafeBufferPointer<Float>,
                        part: Range<Int>, order: Int64) throws
  {
    let space = try makeSpace(shape, name)
    let d = try createDataset(name, fileType: elbo_h5t_ieee_f32le(), space: space.id)
    try writeOrderAttribute(d, order, name)
    guard data.count > 0, let base = data.baseAddress else { return }  // empty: same on all ranks
    let fspace = H5ID(H5Dget_space(d.id), H5Sclose)
    var n = hsize_t(max(1, part.count))
    let mspace = H5ID(H5Screate_simple(1, &n, nil), H5Sclose)
    guard fspace.id >= 0, mspace.id >= 0 else { throw fail("cannot make spaces for '/\(name)'") }
    if part.isEmpty {
      H5Sselect_none(fspace.id)
      H5Sselect_none(mspace.id)
    } else if !shape.isEmpty {
      try selectFlatRange(fspace.id, shape: shape, part, name)
    }
    try check(H5Dwrite(d.id, elbo_h5t_native_float(), mspace.id, fspace.id, writeXfer.id,
                       base + (part.isEmpty ? 0 : part.lowerBound)),
              "cannot write dataset '/\(name)'")
  }

  private func writeOrderAttribute(_ d: H5ID, _ order: Int64, _ name: String) throws {
    let space = H5ID(H5Screate(H5S_SCALAR), H5Sclose)
    let a = H5ID(H5Acreate2(d.id, "order", elbo_h5t_std_i64le(), space.id, elbo_h5p_default(),
                            elbo_h5p_default()), H5Aclose)
    var v = order
    guard a.id >= 0, H5Awrite(a.id, elbo_h5t_native_int64(), &v) >= 0 else {
      throw fail("cannot write attribute 'order' of '/\(name)'")
    }
  }

  /// Selects the flat row-major element range `range` of a dataset of `shape` as a union of
  /// hyperslabs (at most two partial rows per dimension plus one block of whole rows).
  private func selectFlatRange(_ space: hid_t, shape: [Int], _ range: Range<Int>,
                               _ name: String) throws
  {
    H5Sselect_none(space)
    var ok = true
    func add(prefix: [Int], dims: ArraySlice<Int>, lo: Int, hi: Int) {
      guard lo < hi, let d0 = dims.first else { return }
      let rest = dims.dropFirst()
      let r = rest.reduce(1, *)
      let firstFull = (lo + r - 1) / r
      let lastFull = hi / r  // exclusive
      if firstFull < lastFull {
        var start = (prefix + [firstFull] + rest.map { _ in 0 }).map { hsize_t($0) }
        var count = (prefix.map { _ in 1 } + [lastFull - firstFull] + Array(rest)).map {
          hsize_t($0)
        }
        if H5Sselect_hyperslab(space, H5S_SELECT_OR, &start, nil, &count, nil) < 0 { ok = false }
        if lo < firstFull * r {
          add(prefix: prefix + [firstFull - 1], dims: rest, lo: lo - (firstFull - 1) * r,
              hi: r)
        }
        if lastFull * r < hi, lastFull < d0 {
          add(prefix: prefix + [lastFull], dims: rest, lo: 0, hi: hi - lastFull * r)
        }
      } else if lo / r == (hi - 1) / r {
        // lo and hi lie within one row (row lo / r).
        let row = lo / r
        add(prefix: prefix + [row], dims: rest, lo: lo - row * r, hi: hi - row * r)
      } else {
        // The tail of one row and the head of the next, with no whole row between them.
        let row = lo / r
        add(prefix: prefix + [row], dims: rest, lo: lo - row * r, hi: r)
        add(prefix: prefix + [row + 1], dims: rest, lo: 0, hi: hi - (row + 1) * r)
      }
    }
    add(prefix: [], dims: shape[...], lo: range.lowerBound, hi: range.upperBound)
    guard ok, H5Sget_select_npoints(space) == hssize_t(range.count) else {
      throw fail("cannot select elements \(range) of '/\(name)'")
    }
  }

  private func makeSpace(_ shape: [Int], _ name: String) throws -> H5ID {
    if shape.isEmpty { return H5ID(H5Screate(H5S_SCALAR), H5Sclose) }
    var dims = shape.map { hsize_t($0) }
    let s = H5ID(H5Screate_simple(Int32(dims.count), &dims, nil), H5Sclose)
    guard s.id >= 0 else { throw fail("cannot make a dataspace of shape \(shape) for '/\(name)'") }
    return s
  }

  /// A dataset's shape (`[]` for a scalar) and element count.
  private func extent(_ d: H5ID, _ name: String) throws -> ([Int], Int) {
    let space = H5ID(H5Dget_space(d.id), H5Sclose)
    let nd = H5Sget_simple_extent_ndims(space.id)
    guard space.id >= 0, nd >= 0, nd <= 32 else {
      throw fail("not a readable Elbo checkpoint (bad dataspace of '/\(name)')")
    }
    var dims = [hsize_t](repeating: 0, count: Int(max(1, nd)))
    if nd > 0 { H5Sget_simple_extent_dims(space.id, &dims, nil) }
    let shape = nd == 0 ? [] : dims.map { Int(clamping: $0) }
    var count = 1
    for s in shape {
      let (p, o) = count.multipliedReportingOverflow(by: s)
      guard !o, p < 1 << 40 else {
        throw fail("not a readable Elbo checkpoint ('/\(name)' is impossibly large)")
      }
      count = p
    }
    return (shape, count)
  }

  /// Reads a float tensor (any float class is converted to Float) and its `order` attribute.
  func readFloatTensor(_ name: String) throws -> (shape: [Int], data: [Float], order: Int64?) {
    let d = try openDataset(name)
    let type = H5ID(H5Dget_type(d.id), H5Tclose)
    guard type.id >= 0, H5Tget_class(type.id) == H5T_FLOAT else {
      throw fail("not a readable Elbo checkpoint ('/\(name)' is not a float dataset)")
    }
    let (shape, count) = try extent(d, name)
    let data: [Float] = try readAll(d, count: count, as: elbo_h5t_native_float(), name)
    var order: Int64? = nil
    if H5Aexists(d.id, "order") > 0 {
      let a = H5ID(H5Aopen(d.id, "order", elbo_h5p_default()), H5Aclose)
      var v: Int64 = 0
      if a.id >= 0, H5Aread(a.id, elbo_h5t_native_int64(), &v) >= 0 { order = v }
    }
    return (shape, data, order)
  }

  /// Creates the `[rows × cols]` uint64 dataset and writes row `row` from `values`, collectively.
  func writeUInt64Rows(_ name: String, rows: Int, cols: Int, row: Int,
                       values: [UInt64]) throws
  {
    let space = try makeSpace([rows, cols], name)
    let d = try createDataset(name, fileType: elbo_h5t_std_u64le(), space: space.id)
    guard rows > 0, cols > 0 else { return }
    let fspace = H5ID(H5Dget_space(d.id), H5Sclose)
    var n = hsize_t(cols)
    let mspace = H5ID(H5Screate_simple(1, &n, nil), H5Sclose)
    if row >= 0 && row < rows && values.count == cols {
      var start: [hsize_t] = [hsize_t(row), 0]
      var count: [hsize_t] = [1, hsize_t(cols)]
      H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, &start, nil, &count, nil)
    } else {
      H5Sselect_none(fspace.id)
      H5Sselect_none(mspace.id)
    }
    let buf = values.count == cols ? values : [UInt64](repeating: 0, count: cols)
    try buf.withUnsafeBytes { raw in
      guard let base = raw.baseAddress else { return }
      try check(H5Dwrite(d.id, elbo_h5t_native_uint64(), mspace.id, fspace.id, writeXfer.id, base),
                "cannot write dataset '/\(name)'")
    }
  }

  /// Reads all `count` elements of dataset `d` as memory type `type`.
  private func readAll<T: Numeric>(_ d: H5ID, count: Int, as type: hid_t,
                                   _ name: String) throws -> [T] {
    var values = [T](repeating: 0, count: count)
    if count > 0 {
      try values.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        try check(H5Dread(d.id, type, elbo_h5s_all(), elbo_h5s_all(), elbo_h5p_default(), base),
                  "not a readable Elbo checkpoint (cannot read '/\(name)')")
      }
    }
    return values
  }

  func readUInt64Rows(_ name: String) throws -> [[UInt64]] {
    let d = try openDataset(name)
    let (shape, count) = try extent(d, name)
    guard shape.count == 2 else {
      throw fail("not a readable Elbo checkpoint ('/\(name)' is not a matrix)")
    }
    let flat: [UInt64] = try readAll(d, count: count, as: elbo_h5t_native_uint64(), name)
    let cols = shape[1]
    return (0..<shape[0]).map { r in Array(flat[(r * cols)..<((r + 1) * cols)]) }
  }

  /// The paths (relative to the root, e.g. `params/enc/w`) of every dataset in the file.
  func datasetNames() throws -> [String] {
    final class Box { var names: [String] = [] }
    let box = Box()
    let rc = H5Lvisit(file.id, H5_INDEX_NAME, H5_ITER_INC, { _, name, info, op in
      guard let name, let op, let info, info.pointee.type == H5L_TYPE_HARD else { return 0 }
      Unmanaged<Box>.fromOpaque(op).takeUnretainedValue().names.append(String(cString: name))
      return 0
    }, Unmanaged.passUnretained(box).toOpaque())
    guard rc >= 0 else { throw fail("not a readable Elbo checkpoint (cannot list its contents)") }
    return box.names.filter { name in
      let o = H5Oopen(file.id, name, elbo_h5p_default())
      guard o >= 0 else { return false }
      defer { H5Oclose(o) }
      return H5Iget_type(o) == H5I_DATASET
    }
  }
}
