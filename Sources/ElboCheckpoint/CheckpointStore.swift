import ElboDistributed
import Foundation

/// Saves and loads checkpoints in one directory, collectively over all ranks.
///
/// **Saving** (every rank calls ``save(_:)`` with the same state; parameters are replicated):
/// 1. rank 0 creates the directory and picks a temporary name `ckpt-<step>.h5.tmp-<pid>-<hex>`
///    and the creation time, and broadcasts both;
/// 2. all ranks create that file through HDF5's MPI-IO driver and write it collectively: each
///    rank writes a contiguous `1/N` slab of every tensor and its own row of `rng/state`;
/// 3. the file is flushed to disk collectively (`H5Fflush` → `MPI_File_sync` on every rank,
///    so the parts written from other nodes are durable too) and closed collectively; the ranks
///    agree that everyone succeeded, barrier;
/// 4. rank 0 fsyncs the file (what the close wrote last), links it to its final name `ckpt-<step>.h5` (never replacing an
///    existing file: a second save of the same step becomes `ckpt-<step>-2.h5`), fsyncs the
///    directory, then replaces `latest` atomically (`latest.tmp`, fsync, rename, fsync dir) and
///    broadcasts success or its error, so all ranks return or throw together;
/// 5. rank 0 deletes committed checkpoints beyond the newest `keep` (never the one `latest`
///    names) and stale temporary files left by crashed writes; barrier.
///
/// A crash at any point leaves the previous `latest` and its file intact.
///
/// **Loading** (collective): every rank opens the file through MPI-IO and reads all of it
/// (independent reads), and the ranks agree on success. `load("latest")` falls back to older
/// checkpoints when the one `latest` names is missing or unreadable, and says so in
/// ``fallbackNote``. A checkpoint written by N ranks loads with any number of ranks.
///
/// The file layout is documented in `LAYOUT.md` (next to this file):
/// root attributes `format_version`, `model`, `step`, `epoch`, `position_in_epoch`, `seed`,
/// `num_ranks`, `created_utc`; `/config` (UTF-8 string); one float32 dataset per tensor at its
/// name with its shape and an int64 `order` attribute; `/scalars/<name>` float64 scalar
/// datasets; `/rng/state` uint64 `[num_ranks × S]`.
///
/// If a rank fails in the middle of a collective HDF5 call while the others carry on, the others
/// block; the communicator's watchdog then aborts the job (see the failure story in DESIGN.md).
public struct CheckpointStore {
  /// The checkpoint directory (created on the first save).
  public let directory: String
  /// The ranks that save and load together.
  public let communicator: Communicator
  /// How many committed checkpoints to keep (at least 1).
  public let keep: Int
  private let notes = NoteBox()

  public init(directory: String, communicator: Communicator, keep: Int = 3) {
    self.directory = directory
    self.communicator = communicator
    self.keep = max(1, keep)
  }

  /// Why the last ``load(_:expectModel:)`` of `"latest"` used an older checkpoint, or nil.
  public var fallbackNote: String? { notes.note }

  /// What ``loadResult(_:expectModel:)`` found.
  public struct LoadResult {
    /// The checkpoint's contents.
    public var state: CheckpointState
    /// The file it came from.
    public var path: String
    /// Set when `"latest"` could not be used and an older checkpoint was loaded instead.
    public var fallbackNote: String?
  }

  // MARK: Saving

  /// The data a checkpoint holds, in bytes (HDF5's metadata comes on top: a few kB).
  static func estimatedBytes(_ state: CheckpointState) -> Int {
    state.tensors.reduce(0) { $0 + 4 * $1.data.count } + state.configJSON.utf8.count
      + 64 * 1024
  }

  /// "no space left on the device (…)" when the file system holding the directory has less free space
  /// than `bytes`, else nil. The last good checkpoint and `latest` are named, since they are
  /// what the user still has.
  func noSpaceMessage(bytes: Int) -> String? {
    var fs = statvfs()
    guard statvfs(directory, &fs) == 0 else { return nil }
    let free = Int(fs.f_bavail) * Int(fs.f_frsize)
    guard free < bytes else { return nil }
    let mb = { (b: Int) in String(format: "%.1f MB", Double(b) / 1_048_576) }
    let kept = latestPath().map { "; latest still names \(($0 as NSString).lastPathComponent)" }
      ?? ""
    return "no space left on the device (\(mb(free)) free, a checkpoint needs "
      + "about \(mb(bytes))); nothing was committed\(kept)"
  }

  /// Writes `state` as a new checkpoint and points `latest` at it; returns the file's path.
  ///
  /// Collective: every rank must call it with the same state (see ``CheckpointState/rngState``
  /// for the one per-rank part).
  @discardableResult
  public func save(_ state: CheckpointState) throws -> String {
    let comm = communicator
    try CheckpointStore.validate(state, size: comm.size, directory: directory)
    // Cheap guard against ranks passing different states (which would write garbage).
    let prints = try comm.allgather(CheckpointStore.fingerprint(state),
                                    name: "checkpoint agreement")
    if let bad = prints.indices.first(where: { prints[$0] != prints[0] }) {
      throw CheckpointError(path: directory, message: "cannot save step \(state.step): ranks "
        + "passed different checkpoint states (rank \(bad) differs from rank 0)")
    }

    var plan = ""
    let bytes = CheckpointStore.estimatedBytes(state)
    if comm.isRoot { plan = prepare(step: state.step, bytes: bytes) }
    plan = try comm.broadcast(string: plan, name: "checkpoint prepare")
    let fields = plan.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
    guard fields.count == 3, fields[0] == "OK" else {
      throw CheckpointError(path: directory,
                            message: fields.dropFirst().joined(separator: " "))
    }
    let tmpPath = directory + "/" + fields[1]
    let created = fields[2]

    var failure: Error?
    comm.debugLog?.write("checkpoint file \(tmpPath)")
    // HDF5's collective calls do not go through the communicator: watched here, so that a rank
    // stuck in them (another rank failed mid-write) is aborted instead of hanging.
    comm.watched("checkpoint HDF5 write") {
      do {
        let file = try HDF5File.create(path: tmpPath, parallel: true)
        do {
          try write(state, to: file, created: created)
          try file.flushToDisk()
        } catch { failure = error }
        do { try file.close() } catch { failure = failure ?? error }
      } catch {
        failure = error
      }
    }
    if try comm.allreduceLogicalOr(failure != nil, name: "checkpoint write") {
      if comm.isRoot { unlink(tmpPath) }
      try comm.barrier(name: "checkpoint cleanup")
      // The usual cause is a full disk; HDF5 reports only "cannot write", so say it plainly.
      if let full = noSpaceMessage(bytes: bytes) {
        throw CheckpointError(path: tmpPath, message: full + "; the temporary file was removed")
      }
      throw failure ?? CheckpointError(path: tmpPath, message: "another rank failed to write "
        + "its part of the checkpoint; nothing was committed")
    }
    try comm.barrier(name: "checkpoint close")

    var outcome = ""
    if comm.isRoot { outcome = commit(tmpName: fields[1], step: state.step) }
    outcome = try comm.broadcast(string: outcome, name: "checkpoint commit")
    guard outcome.hasPrefix("OK\t") else {
      throw CheckpointError(path: tmpPath, message: String(outcome.drop { $0 != "\t" }.dropFirst()))
    }
    let finalPath = directory + "/" + outcome.dropFirst(3)
    if comm.isRoot { retain() }
    try comm.barrier(name: "checkpoint retention")
    return finalPath
  }

  /// Rank 0: make the directory, check there is room, choose the temporary name and the
  /// creation time.
  private func prepare(step: Int64, bytes: Int) -> String {
    do {
      try FileManager.default.createDirectory(atPath: directory,
                                              withIntermediateDirectories: true)
    } catch {
      return "ERR\tcannot create the checkpoint directory (\(error.localizedDescription))"
    }
    if let full = noSpaceMessage(bytes: bytes) { return "ERR\t\(full)" }
    let f = ISO8601DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    return "OK\t\(CheckpointNames.temporary(step: step))\t\(f.string(from: Date()))"
  }

  /// Rank 0: make the written file durable, give it its final name, update `latest`.
  /// Returns `OK\t<final name>` or `ERR\t<message>`.
  private func commit(tmpName: String, step: Int64) -> String {
    let tmpPath = directory + "/" + tmpName
    if let e = CheckpointSeal.seal(tmpPath) { return "ERR\t\(e)" }
    if let e = fsyncPath(tmpPath) { return "ERR\tcannot fsync the written file (\(e))" }
    var finalName: String?
    for generation in 1...10_000 {
      let name = CheckpointNames.committed(step: step, generation: generation)
      let path = directory + "/" + name
      // link() fails instead of replacing an existing file, so nothing is ever overwritten.
      if link(tmpPath, path) == 0 {
        unlink(tmpPath)
        finalName = name
        break
      }
      let err = errno
      if err == EEXIST { continue }
      // File systems without hard links: check, then rename (only rank 0 writes here).
      if access(path, F_OK) == 0 { continue }
      if rename(tmpPath, path) == 0 {
        finalName = name
        break
      }
      return "ERR\tcannot rename the written file to \(name) (\(String(cString: strerror(errno))))"
    }
    guard let finalName else { return "ERR\ttoo many checkpoints of step \(step)" }
    if let e = fsyncPath(directory, directory: true) {
      return "ERR\tcannot fsync the checkpoint directory (\(e))"
    }
    if let e = writeLatest(finalName) {
      return "ERR\tcommitted \(finalName) but cannot update 'latest' (\(e))"
    }
    return "OK\t\(finalName)"
  }

  /// Replaces `latest` atomically: write `latest.tmp`, fsync, rename, fsync the directory.
  private func writeLatest(_ name: String) -> String? {
    let tmp = directory + "/latest.tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return String(cString: strerror(errno)) }
    let bytes = Array((name + "\n").utf8)
    let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
    let synced = fsync(fd)
    close(fd)
    guard written == bytes.count, synced == 0 else { return "short write or fsync failed" }
    guard rename(tmp, directory + "/" + CheckpointNames.latest) == 0 else {
      return String(cString: strerror(errno))
    }
    return fsyncPath(directory, directory: true)
  }

  /// Rank 0: delete committed checkpoints beyond `keep` (never `latest`'s) and stale
  /// temporaries. Failures here are harmless and ignored.
  private func retain() {
    let current = latestName()
    for (i, name) in CheckpointNames.committedFiles(in: directory).enumerated()
    where i >= keep && name != current {
      unlink(directory + "/" + name)
    }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for name in names where CheckpointNames.isTemporary(name) {
      unlink(directory + "/" + name)
    }
  }

  private func write(_ s: CheckpointState, to file: HDF5File, created: String) throws {
    let comm = communicator
    try file.writeAttribute("format_version", int64: Int64(s.formatVersion))
    try file.writeAttribute("model", string: s.model)
    try file.writeAttribute("step", int64: s.step)
    try file.writeAttribute("epoch", int64: s.epoch)
    try file.writeAttribute("position_in_epoch", int64: s.positionInEpoch)
    try file.writeAttribute("seed", uint64: s.seed)
    try file.writeAttribute("num_ranks", int64: Int64(comm.size))
    try file.writeAttribute("created_utc", string: created)
    try file.writeStringDataset("config", s.configJSON, isRoot: comm.isRoot)
    for (i, t) in s.tensors.enumerated() {
      let n = t.data.count
      let part = (comm.rank * n / comm.size)..<((comm.rank + 1) * n / comm.size)
      try t.data.withUnsafeBufferPointer { buf in
        try file.writeFloatTensor(t.name, shape: t.shape, data: buf, part: part, order: Int64(i))
      }
    }
    for name in s.scalars.keys.sorted() {
      try file.writeDoubleScalar("scalars/" + name, s.scalars[name] ?? 0, isRoot: comm.isRoot)
    }
    let mine = s.rngState.count == comm.size ? s.rngState[comm.rank] : (s.rngState.first ?? [])
    try file.writeUInt64Rows("rng/state", rows: comm.size, cols: mine.count, row: comm.rank,
                             values: mine)
  }

  // MARK: Loading

  /// Loads `"latest"` (with fallback) or the given checkpoint file, collectively.
  ///
  /// A relative path that does not exist as given is looked up in ``directory``.
  /// Throws ``CheckpointError`` if nothing readable is found, if the checkpoint holds another
  /// model than `expectModel`, or if its format is newer than this code supports.
  public func load(_ pathOrLatest: String, expectModel: String?) throws -> CheckpointState {
    let result = try loadResult(pathOrLatest, expectModel: expectModel)
    return result.state
  }

  /// Like ``load(_:expectModel:)``, also telling which file was used and why.
  public func loadResult(_ pathOrLatest: String, expectModel: String?) throws -> LoadResult {
    notes.note = nil
    let comm = communicator
    if pathOrLatest != CheckpointNames.latest {
      var path = pathOrLatest
      if !path.hasPrefix("/") && access(path, F_OK) != 0 { path = directory + "/" + path }
      do {
        let state = try loadAgreed(path: path, expectModel: expectModel)
        return LoadResult(state: state, path: path, fallbackNote: nil)
      } catch let e as LoadFailure {
        throw e.error
      }
    }
    // Rank 0 decides the candidates (so all ranks try the same files in the same order).
    var plan = ""
    if comm.isRoot { plan = candidates().joined(separator: "\n") }
    plan = try comm.broadcast(string: plan, name: "checkpoint candidates")
    var lines = plan.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let latestProblem = lines.isEmpty ? "" : lines.removeFirst()
    var problems: [String] = latestProblem.isEmpty ? [] : [latestProblem]
    for name in lines where !name.isEmpty {
      let path = directory + "/" + name
      do {
        let state = try loadAgreed(path: path, expectModel: expectModel)
        let note: String? = problems.isEmpty
          ? nil : problems.joined(separator: "; ") + "; using \(name) instead"
        notes.note = note
        return LoadResult(state: state, path: path, fallbackNote: note)
      } catch let e as LoadFailure where !e.fatal {
        problems.append(e.error.description)
      } catch let e as LoadFailure {
        throw e.error
      }
    }
    throw CheckpointError(path: directory, message: "no readable checkpoint to resume from"
      + (problems.isEmpty ? " (no 'latest' and no ckpt-*.h5)" : " (" + problems.joined(separator: "; ") + ")"))
  }

  /// Rank 0: first line = what is wrong with `latest` (empty if nothing), then the file
  /// names to try in order: `latest`'s target, then older committed ones, newest first.
  private func candidates() -> [String] {
    let all = CheckpointNames.committedFiles(in: directory)
    let latestFile = directory + "/" + CheckpointNames.latest
    guard let target = latestName() else {
      let why = access(latestFile, F_OK) == 0
        ? "\(latestFile) does not name a checkpoint" : "\(latestFile) is missing"
      return [all.isEmpty ? "" : why] + all
    }
    guard let key = CheckpointNames.parse(target) else { return [""] + all }
    let older = all.filter { n in
      guard let k = CheckpointNames.parse(n) else { return false }
      return (k.step, k.generation) < (key.step, key.generation)
    }
    return [""] + [target] + older
  }

  /// The file name `latest` holds, if it is a well-formed checkpoint name.
  private func latestName() -> String? {
    guard let data = FileManager.default.contents(atPath: directory + "/" + CheckpointNames.latest)
    else { return nil }
    let name = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return CheckpointNames.parse(name) != nil ? name : nil
  }

  /// The path `latest` points to, if `latest` is well-formed and the file exists (local check,
  /// not collective).
  public func latestPath() -> String? {
    guard let name = latestName() else { return nil }
    let path = directory + "/" + name
    return access(path, F_OK) == 0 ? path : nil
  }

  private struct LoadFailure: Error {
    var error: CheckpointError
    /// A wrong model or a too-new format is the user's problem: no fallback.
    var fatal: Bool
  }

  /// All ranks read `path`; all succeed or all throw `LoadFailure`.
  private func loadAgreed(path: String, expectModel: String?) throws -> CheckpointState {
    var outcome: Result<CheckpointState, LoadFailure>
    do {
      try CheckpointSeal.verify(path)
      let file = try HDF5File.open(path: path, parallel: true)
      do {
        let state = try CheckpointStore.readState(file, expectModel: expectModel)
        try file.close()
        outcome = .success(state)
      } catch let e as LoadFailure {
        try? file.close()
        outcome = .failure(e)
      } catch {
        try? file.close()
        outcome = .failure(LoadFailure(error: CheckpointStore.asCheckpointError(error, path),
                                       fatal: false))
      }
    } catch {
      outcome = .failure(LoadFailure(error: CheckpointStore.asCheckpointError(error, path),
                                     fatal: false))
    }
    var mine: Int64 = 0
    if case .failure(let e) = outcome { mine = e.fatal ? 2 : 1 }
    let worst = try communicator.allreduceMax(mine, name: "checkpoint load")
    switch (outcome, worst) {
    case (.success(let s), 0): return s
    case (.failure(let e), _): throw e
    default:
      throw LoadFailure(error: CheckpointError(path: path, message: "not a readable Elbo "
        + "checkpoint (another rank could not read it)"), fatal: worst == 2)
    }
  }

  /// Reads a checkpoint in this process alone, through HDF5's default (sec2) driver; no MPI
  /// collectives. For `elbo inspect` and tools.
  public static func read(path: String) throws -> CheckpointState {
    try CheckpointSeal.verify(path)
    let file = try HDF5File.open(path: path, parallel: false)
    do {
      let state = try readState(file, expectModel: nil)
      try file.close()
      return state
    } catch let e as LoadFailure {
      try? file.close()
      throw e.error
    } catch {
      try? file.close()
      throw asCheckpointError(error, path)
    }
  }

  private static func asCheckpointError(_ error: Error, _ path: String) -> CheckpointError {
    (error as? CheckpointError)
      ?? CheckpointError(path: path, message: "not a readable Elbo checkpoint (\(error))")
  }

  private static func readState(_ f: HDF5File, expectModel: String?) throws -> CheckpointState {
    let version = try f.readAttributeInt64("format_version")
    guard version >= 1 else {
      throw f.fail("not a readable Elbo checkpoint (format version \(version))")
    }
    guard version <= Int64(CheckpointState.currentFormatVersion) else {
      throw LoadFailure(error: f.fail("format version \(version) is newer than this Elbo "
        + "supports (\(CheckpointState.currentFormatVersion)); use a newer elbo"), fatal: true)
    }
    let model = try f.readAttributeString("model")
    if let expectModel, expectModel != model {
      throw LoadFailure(error: f.fail("holds a '\(model)' checkpoint, not '\(expectModel)'"),
                        fatal: true)
    }
    let step = try f.readAttributeInt64("step")
    let epoch = try f.readAttributeInt64("epoch")
    let position = try f.readAttributeInt64("position_in_epoch")
    let seed = try f.readAttributeUInt64("seed")
    let config = try f.readStringDataset("config")
    var tensors: [(CheckpointTensor, Int64?)] = []
    var scalars: [String: Double] = [:]
    for name in try f.datasetNames() {
      if name == "config" || name == "rng/state" { continue }
      if name.hasPrefix("scalars/") {
        scalars[String(name.dropFirst(8))] = try f.readDoubleScalar(name)
        continue
      }
      let t = try f.readFloatTensor(name)
      tensors.append((CheckpointTensor(name: name, shape: t.shape, data: t.data), t.order))
    }
    // Restore the writer's order (the `order` attribute); names break ties.
    tensors.sort { a, b in
      (a.1 ?? Int64.max, a.0.name) < (b.1 ?? Int64.max, b.0.name)
    }
    let rng = try f.readUInt64Rows("rng/state")
    return CheckpointState(formatVersion: Int(version), model: model, configJSON: config,
                           step: step, epoch: epoch, positionInEpoch: position, seed: seed,
                           tensors: tensors.map(\.0), scalars: scalars, rngState: rng)
  }

  // MARK: Validation

  /// Checks names, shapes and counts before any collective work (same outcome on every rank).
  static func validate(_ s: CheckpointState, size: Int, directory: String) throws {
    func bad(_ m: String) -> CheckpointError {
      CheckpointError(path: directory, message: "cannot save step \(s.step): \(m)")
    }
    guard s.formatVersion == CheckpointState.currentFormatVersion else {
      throw bad("format version \(s.formatVersion) cannot be written "
        + "(this Elbo writes \(CheckpointState.currentFormatVersion))")
    }
    guard s.step >= 0 else { throw bad("negative step") }
    var seen = Set<String>()
    for t in s.tensors {
      try checkName(t.name, what: "tensor", bad)
      let first = t.name.split(separator: "/").first.map(String.init) ?? ""
      guard first != "scalars", first != "rng", t.name != "config" else {
        throw bad("tensor name '\(t.name)' is reserved (config, scalars/…, rng/…)")
      }
      guard seen.insert(t.name).inserted else { throw bad("two tensors named '\(t.name)'") }
      guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.count <= 32 else {
        throw bad("tensor '\(t.name)' has an invalid shape \(t.shape)")
      }
      var n = 1
      for d in t.shape {
        let (p, o) = n.multipliedReportingOverflow(by: d)
        guard !o else { throw bad("tensor '\(t.name)' is too large") }
        n = p
      }
      guard n == t.data.count else {
        throw bad("tensor '\(t.name)' has shape \(t.shape) but \(t.data.count) values")
      }
    }
    for name in s.scalars.keys { try checkName(name, what: "scalar", bad) }
    guard s.rngState.count <= 1 || s.rngState.count == size else {
      throw bad("rngState has \(s.rngState.count) rows for \(size) ranks (pass all rows or "
        + "just this rank's)")
    }
    guard Set(s.rngState.map(\.count)).count <= 1 else {
      throw bad("rngState rows have different lengths")
    }
  }

  private static func checkName(_ name: String, what: String,
                                _ bad: (String) -> CheckpointError) throws
  {
    let parts = name.split(separator: "/", omittingEmptySubsequences: false)
    guard !name.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
      !name.utf8.contains(0)
    else { throw bad("invalid \(what) name '\(name)'") }
  }

  /// A hash of everything that must be identical on all ranks (not the tensor values: too
  /// costly; ``Communicator/parameterChecksumsAgree(_:name:)`` checks those).
  static func fingerprint(_ s: CheckpointState) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ bytes: some Sequence<UInt8>) {
      for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
      h = (h ^ 0xff) &* 0x0000_0100_0000_01b3
    }
    func mix(_ v: UInt64) { withUnsafeBytes(of: v) { mix($0) } }
    mix(UInt64(s.formatVersion))
    mix(s.model.utf8)
    mix(s.configJSON.utf8)
    mix(UInt64(bitPattern: s.step))
    mix(UInt64(bitPattern: s.epoch))
    mix(UInt64(bitPattern: s.positionInEpoch))
    mix(s.seed)
    for t in s.tensors {
      mix(t.name.utf8)
      t.shape.forEach { mix(UInt64($0)) }
      mix(UInt64(t.data.count))
    }
    for k in s.scalars.keys.sorted() {
      mix(k.utf8)
      mix((s.scalars[k] ?? 0).bitPattern)
    }
    mix(UInt64(s.rngState.count))
    mix(UInt64(s.rngState.first?.count ?? 0))
    return h
  }
}

/// fsyncs a file or directory; returns an error text or nil.
func fsyncPath(_ path: String, directory: Bool = false) -> String? {
  let fd = open(path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
  guard fd >= 0 else { return String(cString: strerror(errno)) }
  defer { close(fd) }
  return fsync(fd) == 0 ? nil : String(cString: strerror(errno))
}

/// Holds the last fallback note (the store itself is a value type).
final class NoteBox: @unchecked Sendable {
  var note: String?
}
