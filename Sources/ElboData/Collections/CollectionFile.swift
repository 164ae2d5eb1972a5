import CHDF5
import ElboDistributed
import ElboTensor
import Foundation

/// One collection of small data sets in one HDF5 file (layout: LAYOUT.md beside this file).
///
///   /points    float32 [N_total, D]   every data set's rows, back to back
///   /offsets   int64   [n + 1]        data set i is rows offsets[i] ..< offsets[i + 1]
///   /meta/<m>  float64 or int64 [n] or [n, k]   per-data-set metadata (family, parameters, …)
///   root attributes: format = "elbo-collection 1", kind = the generator's name
///
/// Writing is one process (`elbo data make`). Reading is collective: every rank opens the file
/// through the MPI-IO driver, reads the small tables (offsets, metadata) whole, and then reads
/// only the rows of *its* data sets (``read(datasets:)``: one hyperslab selection per rank,
/// collective transfer), never the whole of /points.
///
/// All HDF5 calls must come from one thread (HDF5 1.10 is not thread-safe).
public final class CollectionFile {
  public let path: String
  /// The generator that made the file (`kind` attribute), e.g. "harmonic".
  public let kind: String
  /// Columns D of a point.
  public let dimension: Int
  /// n + 1 row offsets: data set i is rows offsets[i] ..< offsets[i + 1].
  public let offsets: [Int]
  /// Per-data-set metadata, by name (the /meta group).
  public let metadata: [String: CollectionMetadata]
  /// Data sets in the file.
  public var count: Int { offsets.count - 1 }
  /// Points in data set i.
  public func size(of i: Int) -> Int { offsets[i + 1] - offsets[i] }
  /// Rows this process has read so far through ``read(datasets:)`` (tests check sharding by it).
  public private(set) var rowsRead = 0

  private let file: H5Handle
  private let points: H5Handle
  private let communicator: Communicator?
  private let transfer: H5Handle

  /// The file-format tag of the `format` root attribute.
  public static let format = "elbo-collection 1"

  // MARK: - Reading

  /// Opens `path` and reads the offsets and the metadata. With a communicator of several ranks
  /// this is collective (every rank calls it with the same path) and the file is read through
  /// the MPI-IO driver; the communicator's debug log records each ``read(datasets:)``.
  /// - Throws: ``DataError`` naming the file and what is wrong with it.
  public init(path: String, communicator: Communicator?) throws {
    self.path = path
    self.communicator = communicator
    elbo_h5_silence_errors()
    guard FileManager.default.fileExists(atPath: path) else {
      throw DataError(path, "no such collection file (make one with `elbo data make`)")
    }
    // One rank needs no MPI-IO (the plain driver reads the same bytes).
    let parallel = (communicator?.size ?? 1) > 1
    let fapl = H5Handle(H5Pcreate(elbo_h5p_file_access()), H5Pclose)
    if let communicator, parallel, fapl.id >= 0 {
      H5Pset_fapl_mpio(fapl.id, communicator.comm, elbo_h5_info_null())
    }
    let f = H5Fopen(path, elbo_h5f_acc_rdonly(), fapl.id)
    guard f >= 0 else {
      throw DataError(path, "not an HDF5 file (truncated or another format); "
        + "expected a collection made by `elbo data make`")
    }
    file = H5Handle(f, H5Fclose)
    let x = H5Handle(H5Pcreate(elbo_h5p_dataset_xfer()), H5Pclose)
    if parallel && x.id >= 0 { H5Pset_dxpl_mpio(x.id, elbo_h5fd_mpio_collective()) }
    transfer = x

    let bad = { (what: String) in
      DataError(path, "not an Elbo collection (\(what)); see the layout in `elbo data --help`")
    }
    kind = try H5IO.readStringAttribute(file.id, "kind") ?? { throw bad("no 'kind' attribute") }()
    points = try H5IO.open(file.id, "points") ?? { throw bad("no dataset /points") }()
    let pshape = H5IO.shape(points.id)
    guard pshape.count == 2, H5IO.isFloat(points.id) else {
      throw bad("/points is not a float matrix [rows, D]")
    }
    dimension = pshape[1]
    guard let off = try H5IO.open(file.id, "offsets") else { throw bad("no dataset /offsets") }
    let oshape = H5IO.shape(off.id)
    guard oshape.count == 1, oshape[0] >= 1, H5IO.isInteger(off.id) else {
      throw bad("/offsets is not an integer vector [n + 1]")
    }
    let o: [Int64] = try H5IO.readAll(off.id, count: oshape[0], type: elbo_h5t_native_int64())
      ?? { throw bad("cannot read /offsets") }()
    offsets = o.map { Int($0) }
    guard offsets.first == 0, offsets.last == pshape[0],
      zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 })
    else {
      throw bad("/offsets must rise from 0 to the \(pshape[0]) rows of /points")
    }
    var meta: [String: CollectionMetadata] = [:]
    let n = offsets.count - 1
    for name in H5IO.members(file.id, group: "meta") {
      guard let d = try H5IO.open(file.id, "meta/" + name) else { continue }
      let s = H5IO.shape(d.id)
      guard (s.count == 1 || s.count == 2), s[0] == n else {
        throw bad("/meta/\(name) must have one row per data set (\(n))")
      }
      let cols = s.count == 2 ? s[1] : 1
      let values: [Double] = try H5IO.readAll(d.id, count: n * cols,
                                              type: elbo_h5t_native_double())
        ?? { throw bad("cannot read /meta/\(name)") }()
      let codes = try H5IO.readStringAttribute(d.id, "codes")
      meta[name] = CollectionMetadata(
        values: values, columns: cols,
        codes: codes.map { $0.split(separator: ",").map(String.init) },
        matrix: s.count == 2)
    }
    metadata = meta
  }

  /// Reads the rows of `datasets` (global indices, any order), one tensor [n_i, D] each.
  ///
  /// Collective when the file was opened on several ranks: every rank calls this the same
  /// number of times, a rank with nothing to read with an empty list (its selection is then
  /// empty). The union of the data sets' rows is ONE hyperslab selection (a union of row
  /// blocks) read in one transfer. Each call is logged to the rank's debug log.
  public func read(datasets: [Int]) throws -> [Tensor] {
    for i in datasets where i < 0 || i >= count {
      throw DataError(path, "data set \(i) does not exist (the collection holds \(count))")
    }
    // Sorted, distinct row blocks (HDF5 returns a selection in file order).
    let order = Array(Set(datasets)).sorted()
    let rows = order.reduce(0) { $0 + size(of: $1) }
    let d = dimension
    var buffer = [Float](repeating: 0, count: max(1, rows * d))
    let fspace = H5Handle(H5Dget_space(points.id), H5Sclose)
    H5Sselect_none(fspace.id)
    for i in order where size(of: i) > 0 {
      var start: [hsize_t] = [hsize_t(offsets[i]), 0]
      var block: [hsize_t] = [hsize_t(size(of: i)), hsize_t(d)]
      H5Sselect_hyperslab(fspace.id, H5S_SELECT_OR, &start, nil, &block, nil)
    }
    var memRows = hsize_t(max(1, rows * d))
    let mspace = H5Handle(H5Screate_simple(1, &memRows, nil), H5Sclose)
    if rows * d == 0 { H5Sselect_none(mspace.id) }
    let rc = buffer.withUnsafeMutableBytes { raw in
      H5Dread(points.id, elbo_h5t_native_float(), mspace.id, fspace.id, transfer.id,
              raw.baseAddress)
    }
    guard rc >= 0 else { throw DataError(path, "cannot read the rows of data sets \(order)") }
    rowsRead += rows
    communicator?.debugLog?.write("collection \(path): read data sets \(order) "
      + "(\(rows) rows)")
    // Cut the buffer back into data sets, in the order asked for.
    var start: [Int: Int] = [:]
    var at = 0
    for i in order { start[i] = at; at += size(of: i) }
    return datasets.map { i in
      let lo = (start[i] ?? 0) * d
      return Tensor(Array(buffer[lo..<(lo + size(of: i) * d)]), shape: [size(of: i), d])
    }
  }

  /// The metadata rows of `datasets` for `name` (nil if the file has no such metadata).
  public func metadata(_ name: String, datasets: [Int]) -> [[Double]]? {
    guard let m = metadata[name] else { return nil }
    return datasets.map { m.row($0) }
  }

  // MARK: - Writing

  /// Writes a collection to `path` (replacing it) from one process.
  /// - Parameters:
  ///   - points: N_total × D floats, row-major, every data set back to back.
  ///   - offsets: n + 1 rising offsets from 0 to N_total.
  ///   - metadata: per-data-set tables, each with n rows.
  ///   - kind: the generator's name (the `kind` attribute).
  /// The bytes depend only on the arguments (no timestamps are recorded).
  public static func write(path: String, points: [Float], dimension: Int, offsets: [Int],
                           metadata: [String: CollectionMetadata], kind: String) throws
  {
    let fail = { (what: String) in DataError(path, what) }
    guard dimension > 0, points.count % dimension == 0 else {
      throw fail("points do not fill rows of \(dimension) columns")
    }
    let rows = points.count / dimension
    guard offsets.first == 0, offsets.last == rows,
      zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 })
    else { throw fail("offsets must rise from 0 to \(rows)") }
    let n = offsets.count - 1
    for (name, m) in metadata where m.values.count != n * m.columns {
      throw fail("metadata '\(name)' has \(m.values.count) values for \(n) data sets")
    }
    elbo_h5_silence_errors()
    let f = H5Fcreate(path, elbo_h5f_acc_trunc(), elbo_h5p_default(), elbo_h5p_default())
    guard f >= 0 else { throw fail("cannot create the file (directory missing or not writable?)") }
    let file = H5Handle(f, H5Fclose)
    try H5IO.writeStringAttribute(file.id, "format", format, path)
    try H5IO.writeStringAttribute(file.id, "kind", kind, path)
    try H5IO.write(file.id, "points", shape: [rows, dimension], float: points, path)
    try H5IO.write(file.id, "offsets", shape: [n + 1], int64: offsets.map { Int64($0) }, path)
    H5open()  // the property-list class globals exist only after it
    let gcpl = H5Handle(H5Pcreate(H5P_CLS_GROUP_CREATE_ID_g), H5Pclose)
    H5Pset_obj_track_times(gcpl.id, false)
    let g = H5Handle(H5Gcreate2(file.id, "meta", elbo_h5p_default(), gcpl.id, elbo_h5p_default()),
                     H5Gclose)
    guard g.id >= 0 else { throw fail("cannot create the group /meta") }
    for name in metadata.keys.sorted() {
      let m = metadata[name]!
      let shape = m.matrix ? [n, m.columns] : [n]
      let d: H5Handle
      if m.codes != nil {
        d = try H5IO.write(g.id, name, shape: shape, int64: m.values.map { Int64($0) }, path)
      } else {
        d = try H5IO.write(g.id, name, shape: shape, double: m.values, path)
      }
      if let codes = m.codes {
        try H5IO.writeStringAttribute(d.id, "codes", codes.joined(separator: ","), path)
      }
    }
    guard file.close() else { throw fail("HDF5 could not flush and close the file") }
  }
}

/// Per-data-set metadata: one row of `columns` values per data set.
public struct CollectionMetadata: Equatable, Sendable {
  /// n × columns values, row-major.
  public var values: [Double]
  public var columns: Int
  /// For a categorical column stored as int64: the name of each code (code c = codes[c]).
  public var codes: [String]?
  /// Stored as [n, k] (true) or [n] (false, one column).
  public var matrix: Bool

  public init(values: [Double], columns: Int = 1, codes: [String]? = nil, matrix: Bool? = nil) {
    self.values = values
    self.columns = columns
    self.codes = codes
    self.matrix = matrix ?? (columns > 1)
  }

  public func row(_ i: Int) -> [Double] { Array(values[(i * columns)..<((i + 1) * columns)]) }
}

// MARK: - HDF5 helpers

/// An HDF5 identifier closed exactly once.
final class H5Handle {
  private(set) var id: hid_t
  private let closer: (hid_t) -> herr_t
  init(_ id: hid_t, _ closer: @escaping (hid_t) -> herr_t) {
    self.id = id
    self.closer = closer
  }
  @discardableResult func close() -> Bool {
    guard id >= 0 else { return true }
    let rc = closer(id)
    id = -1
    return rc >= 0
  }
  deinit { close() }
}

/// The few HDF5 calls a collection needs (small tables whole, strings, no timestamps).
enum H5IO {
  static func open(_ loc: hid_t, _ name: String) throws -> H5Handle? {
    guard H5Lexists(loc, name, elbo_h5p_default()) > 0 else { return nil }
    let d = H5Handle(H5Dopen2(loc, name, elbo_h5p_default()), H5Dclose)
    return d.id >= 0 ? d : nil
  }

  static func shape(_ d: hid_t) -> [Int] {
    let s = H5Handle(H5Dget_space(d), H5Sclose)
    let nd = H5Sget_simple_extent_ndims(s.id)
    guard nd > 0, nd <= 8 else { return [] }
    var dims = [hsize_t](repeating: 0, count: Int(nd))
    H5Sget_simple_extent_dims(s.id, &dims, nil)
    return dims.map { Int(clamping: $0) }
  }

  static func typeClass(_ d: hid_t) -> H5T_class_t {
    let t = H5Handle(H5Dget_type(d), H5Tclose)
    return H5Tget_class(t.id)
  }
  static func isFloat(_ d: hid_t) -> Bool { typeClass(d) == H5T_FLOAT }
  static func isInteger(_ d: hid_t) -> Bool { typeClass(d) == H5T_INTEGER }

  /// All `count` elements as memory type `type` (independent transfer: small tables).
  static func readAll<T: Numeric>(_ d: hid_t, count: Int, type: hid_t) throws -> [T]? {
    var v = [T](repeating: 0, count: max(1, count))
    let rc = v.withUnsafeMutableBytes { raw in
      H5Dread(d, type, elbo_h5s_all(), elbo_h5s_all(), elbo_h5p_default(), raw.baseAddress)
    }
    return rc >= 0 ? Array(v.prefix(count)) : nil
  }

  /// Names of the members of `group` (empty if it does not exist), sorted.
  static func members(_ loc: hid_t, group: String) -> [String] {
    guard H5Lexists(loc, group, elbo_h5p_default()) > 0 else { return [] }
    let g = H5Handle(H5Gopen2(loc, group, elbo_h5p_default()), H5Gclose)
    guard g.id >= 0 else { return [] }
    final class Box { var names: [String] = [] }
    let box = Box()
    H5Literate(g.id, H5_INDEX_NAME, H5_ITER_INC, nil, { _, name, _, op in
      guard let name, let op else { return 0 }
      Unmanaged<Box>.fromOpaque(op).takeUnretainedValue().names.append(String(cString: name))
      return 0
    }, Unmanaged.passUnretained(box).toOpaque())
    return box.names.sorted()
  }

  static func readStringAttribute(_ loc: hid_t, _ name: String) throws -> String? {
    guard H5Aexists(loc, name) > 0 else { return nil }
    let a = H5Handle(H5Aopen(loc, name, elbo_h5p_default()), H5Aclose)
    let t = H5Handle(H5Aget_type(a.id), H5Tclose)
    guard a.id >= 0, H5Tget_class(t.id) == H5T_STRING else { return nil }
    let mem = H5Handle(H5Tcopy(elbo_h5t_c_s1()), H5Tclose)
    H5Tset_cset(mem.id, H5Tget_cset(t.id))
    if H5Tis_variable_str(t.id) > 0 {  // h5py's default
      H5Tset_size(mem.id, elbo_h5t_variable())
      var p: UnsafeMutablePointer<CChar>? = nil
      guard H5Aread(a.id, mem.id, &p) >= 0, let p else { return nil }
      defer { H5free_memory(p) }
      return String(cString: p)
    }
    let size = H5Tget_size(t.id)
    guard size > 0, size < 1 << 20 else { return nil }
    H5Tset_size(mem.id, size + 1)
    H5Tset_strpad(mem.id, H5T_STR_NULLTERM)
    var buf = [UInt8](repeating: 0, count: size + 1)
    guard H5Aread(a.id, mem.id, &buf) >= 0 else { return nil }
    return String(decoding: buf.prefix(while: { $0 != 0 }), as: UTF8.self)
  }

  static func writeStringAttribute(_ loc: hid_t, _ name: String, _ value: String,
                                   _ path: String) throws
  {
    let t = H5Handle(H5Tcopy(elbo_h5t_c_s1()), H5Tclose)
    H5Tset_size(t.id, max(1, value.utf8.count) + 1)
    H5Tset_cset(t.id, H5T_CSET_UTF8)
    H5Tset_strpad(t.id, H5T_STR_NULLTERM)
    let space = H5Handle(H5Screate(H5S_SCALAR), H5Sclose)
    let a = H5Handle(H5Acreate2(loc, name, t.id, space.id, elbo_h5p_default(),
                                elbo_h5p_default()), H5Aclose)
    var bytes = Array(value.utf8) + [0]
    guard a.id >= 0, H5Awrite(a.id, t.id, &bytes) >= 0 else {
      throw DataError(path, "cannot write the attribute '\(name)'")
    }
  }

  @discardableResult
  private static func write(_ loc: hid_t, _ name: String, shape: [Int], fileType: hid_t,
                            memType: hid_t, _ bytes: UnsafeRawPointer?, _ path: String) throws
    -> H5Handle
  {
    var dims = shape.map { hsize_t($0) }
    let space = H5Handle(H5Screate_simple(Int32(dims.count), &dims, nil), H5Sclose)
    // No modification times in object headers: the same collection gives the same bytes.
    let dcpl = H5Handle(H5Pcreate(elbo_h5p_dataset_create()), H5Pclose)
    H5Pset_obj_track_times(dcpl.id, false)
    let d = H5Handle(H5Dcreate2(loc, name, fileType, space.id, elbo_h5p_default(), dcpl.id,
                                elbo_h5p_default()), H5Dclose)
    guard d.id >= 0 else { throw DataError(path, "cannot create the dataset '\(name)'") }
    if shape.reduce(1, *) > 0 {
      guard H5Dwrite(d.id, memType, elbo_h5s_all(), elbo_h5s_all(), elbo_h5p_default(),
                     bytes) >= 0
      else { throw DataError(path, "cannot write the dataset '\(name)'") }
    }
    return d
  }

  @discardableResult
  static func write(_ loc: hid_t, _ name: String, shape: [Int], float values: [Float],
                    _ path: String) throws -> H5Handle {
    try values.withUnsafeBytes {
      try write(loc, name, shape: shape, fileType: elbo_h5t_ieee_f32le(),
                memType: elbo_h5t_native_float(), $0.baseAddress, path)
    }
  }

  @discardableResult
  static func write(_ loc: hid_t, _ name: String, shape: [Int], double values: [Double],
                    _ path: String) throws -> H5Handle {
    try values.withUnsafeBytes {
      try write(loc, name, shape: shape, fileType: elbo_h5t_ieee_f64le(),
                memType: elbo_h5t_native_double(), $0.baseAddress, path)
    }
  }

  @discardableResult
  static func write(_ loc: hid_t, _ name: String, shape: [Int], int64 values: [Int64],
                    _ path: String) throws -> H5Handle {
    try values.withUnsafeBytes {
      try write(loc, name, shape: shape, fileType: elbo_h5t_std_i64le(),
                memType: elbo_h5t_native_int64(), $0.baseAddress, path)
    }
  }
}
