import ElboCheckpoint
import ElboDistributed
import Foundation

/// `elbo bench checkpoint`: how fast a collective checkpoint reaches the disk, next to what the
/// disk itself does.
///
/// It writes a state of `sizeMiB` MiB of float tensors through the real `CheckpointStore.save`
/// — collective parallel-HDF5 write on every rank, flush to disk (`MPI_File_sync` on every
/// rank, then rank 0's fsync), link, `latest` — and, in the same directory, times
/// `dd if=/dev/zero of=FILE bs=1M count=<sizeMiB> conv=fsync` (rank 0). Both are repeated,
/// alternately and in alternating order, each file deleted once timed, and the best of each is
/// kept, so that a burst of other I/O on a shared machine
/// does not decide the ratio. Everything it wrote is deleted afterwards.
public enum CheckpointBenchmark {
  public static func run(sizeMiB: Int, directory: String, repeats: Int,
                         communicator comm: Communicator) throws -> [String: Any] {
    // The state, replicated on every rank as in training: tensors of 64 MiB (16 Mi floats),
    // like the large layers and their Adam moments. Values are a cheap non-constant pattern.
    let floatsPerTensor = 1 << 24
    let totalFloats = sizeMiB * (1 << 18)
    var tensors: [CheckpointTensor] = []
    var remaining = totalFloats
    while remaining > 0 {
      let n = min(floatsPerTensor, remaining)
      let i = tensors.count
      let data = [Float](unsafeUninitializedCapacity: n) { buf, count in
        for j in 0..<n { buf[j] = Float((j &+ i) & 1023) * 1e-3 }
        count = n
      }
      tensors.append(CheckpointTensor(name: String(format: "params/t%03d", i), shape: [n / 1024, 1024],
                                      data: data))
      remaining -= n
    }
    let state = CheckpointState(
      model: "bench", configJSON: "{}", step: 0, epoch: 0, positionInEpoch: 0, seed: 0,
      tensors: tensors, scalars: [:], rngState: [[0, 0, 0, UInt64(comm.rank)]])
    let bytes = Double(totalFloats) * 4

    // One fresh directory, the same on every rank, removed at the end.
    var dir = ""
    var problem = ""
    if comm.isRoot {
      dir = directory + "/elbo-bench-checkpoint-\(getpid())"
      do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      } catch {
        problem = "--dir \(directory): cannot create \(dir) (\(error.localizedDescription))"
      }
    }
    problem = try comm.broadcast(string: problem, name: "bench directory check")
    if !problem.isEmpty { throw ElboError(problem) }
    dir = try comm.broadcast(string: dir, name: "bench directory")
    defer {
      try? comm.barrier(name: "bench cleanup")
      if comm.isRoot { try? FileManager.default.removeItem(atPath: dir) }
    }

    // Fairness between the two writers, both measured here:
    // - Each file is deleted right after it is timed (deleting is not part of writing). So
    //   both always write into the page cache that the previous write freed. Had the
    //   checkpoints been kept while dd's file was deleted, dd would have reused warm
    //   memory and each checkpoint would have needed fresh memory. On this VM, memory idle
    //   for ~30 s goes back to the host and is slow to touch again. Measured that way: dd
    //   2.2 GB/s, checkpoint 0.4 GB/s.
    // - The order alternates: dd first in even repeats, the checkpoint first in odd ones.
    //   Whichever writes first after idling pays for waking the memory.
    let store = CheckpointStore(directory: dir + "/checkpoints", communicator: comm,
                                keep: repeats)
    var bestCheckpoint = Double.infinity, bestDD = Double.infinity
    var fileBytes = 0.0

    func timeCheckpoint(_ r: Int) throws {
      try comm.barrier(name: "bench checkpoint start")
      let t0 = now()
      var s = state
      s.step = Int64(r)
      let path = try store.save(s)
      bestCheckpoint = min(bestCheckpoint, now() - t0)
      try comm.barrier(name: "bench checkpoint done")
      if comm.isRoot {
        fileBytes = Double((try? FileManager.default.attributesOfItem(atPath: path)[.size]
                              as? Int) ?? 0)
        unlink(path)
      }
    }
    func timeDDOnRoot() throws {
      // Rank 0 alone. The others wait without spinning: a blocking MPI barrier busy-polls a
      // core, and dd's copy into the page cache needs the CPU.
      var ddError: Error?
      if comm.isRoot {
        do { bestDD = min(bestDD, try timeDD(path: dir + "/dd.tmp", mib: sizeMiB)) } catch {
          ddError = error
        }
      }
      var failed: [Int32] = [ddError == nil ? 0 : 1]
      try failed.withUnsafeMutableBufferPointer { flag in
        let done = try comm.iallreduceSum(flag, name: "bench dd")
        while try !done.test() { usleep(10_000) }
      }
      if failed[0] != 0 { throw ddError ?? ElboError("dd failed on rank 0; no figures") }
    }
    for r in 0..<repeats {
      if r % 2 == 0 {
        try timeDDOnRoot(); try timeCheckpoint(r)
      } else {
        try timeCheckpoint(r); try timeDDOnRoot()
      }
    }
    let checkpointMBs = bytes / bestCheckpoint / 1e6
    let ddMBs = bytes / bestDD / 1e6
    return [
      "bench": "checkpoint", "ranks": comm.size, "size_mib": sizeMiB, "repeats": repeats,
      "tensors": tensors.count, "file_bytes": Int(fileBytes), "directory": directory,
      "checkpoint_seconds": round3(bestCheckpoint), "checkpoint_mb_per_s": round1(checkpointMBs),
      "dd_seconds": round3(bestDD), "dd_mb_per_s": round1(ddMBs),
      "checkpoint_vs_dd": round3(checkpointMBs / ddMBs),
      "romio": ProcessInfo.processInfo.environment["OMPI_MCA_io"] ?? "default",
    ]
  }

  /// Seconds for `dd if=/dev/zero of=path bs=1M count=mib conv=fsync`; deletes the file.
  static func timeDD(path: String, mib: Int) throws -> Double {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["dd", "if=/dev/zero", "of=\(path)", "bs=1M", "count=\(mib)", "conv=fsync"]
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    let t0 = now()
    try p.run()
    let message = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let seconds = now() - t0
    unlink(path)
    guard p.terminationStatus == 0 else {
      let text = String(decoding: message, as: UTF8.self).split(separator: "\n").first ?? ""
      throw ElboError("dd into \(path) failed: \(text)")
    }
    return seconds
  }
}
