import Foundation

/// One rank's debug log: `<directory>/rank-<r>.log`, written only on request (`elbo train
/// --debug-log DIR`, or `ELBO_DEBUG_LOG=DIR` for any command).
///
/// Rank 0 alone prints to the console and writes run files; when a multi-rank job misbehaves,
/// this log is each rank's own account. It opens with who the rank is (rank, host, pid, network
/// namespace and IPv4 addresses, so that a multi-"host" run can be checked to really span
/// hosts), then one line per collective entered and left (with its duration) and whatever the
/// caller adds (the trainer: per-step timings). Every line is one `write(2)`, unbuffered, so a
/// rank that is aborted or killed leaves its log complete up to the collective it was in.
///
/// Line format: `[seconds since the log opened] text`.
public final class DebugLog: @unchecked Sendable {
  /// The log file's path.
  public let path: String
  private let fd: Int32
  private let start = Watchdog.now()
  private let lock = NSLock()

  /// Creates `directory` if needed and opens this rank's file (replacing an older one).
  public init(directory: String, rank: Int, size: Int, hostname: String) throws {
    path = directory + "/rank-\(rank).log"
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw DebugLogError(description: "--debug-log \(directory): cannot create the directory "
        + "(\(error.localizedDescription))")
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw DebugLogError(description: "--debug-log \(directory): cannot open \(path) "
        + "(\(String(cString: strerror(errno))))")
    }
    let ns = DebugLog.networkNamespace()
    let ips = DebugLog.ipv4Addresses()
    write("rank \(rank)/\(size) host \(hostname) pid \(getpid()) netns \(ns) "
      + "ipv4 \(ips.isEmpty ? "-" : ips.joined(separator: ","))")
  }

  deinit { close(fd) }

  /// Appends one line.
  public func write(_ text: String) {
    let line = String(format: "[%12.6f] ", Watchdog.now() - start) + text + "\n"
    lock.lock()
    defer { lock.unlock() }
    _ = line.withCString { Foundation.write(fd, $0, strlen($0)) }
  }

  // MARK: - Where this process runs

  /// The network namespace: its name when it is one of `ip netns`'s (a bind mount under
  /// /run/netns with the same inode), then the kernel's id, e.g. `elbo-a (net:[4026532177])`.
  static func networkNamespace() -> String {
    let link = "/proc/self/ns/net"
    let id = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) ?? "unknown"
    var mine = stat()
    guard stat(link, &mine) == 0 else { return id }
    let dir = "/run/netns"
    for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
      var other = stat()
      if stat(dir + "/" + name, &other) == 0, other.st_ino == mine.st_ino,
        other.st_dev == mine.st_dev
      {
        return "\(name) (\(id))"
      }
    }
    return id
  }

  /// The IPv4 addresses of this namespace's interfaces other than loopback.
  static func ipv4Addresses() -> [String] {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return [] }
    defer { freeifaddrs(list) }
    var out: [String] = []
    for p in sequence(first: first, next: { $0.pointee.ifa_next }) {
      guard let addr = p.pointee.ifa_addr, addr.pointee.sa_family == UInt16(AF_INET),
        (p.pointee.ifa_flags & UInt32(IFF_LOOPBACK)) == 0
      else { continue }
      var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
      if getnameinfo(addr, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count),
                     nil, 0, NI_NUMERICHOST) == 0
      {
        out.append("\(String(cString: p.pointee.ifa_name))=\(String(cString: host))")
      }
    }
    return out
  }
}

/// A debug log that cannot be opened (the entry point adds the rank).
public struct DebugLogError: Error, CustomStringConvertible, Sendable {
  public var description: String
}

extension Communicator {
  /// Opens this rank's debug log in `directory` (see ``DebugLog``); collectives are logged from
  /// then on.
  public func openDebugLog(directory: String) throws {
    debugLog = try DebugLog(directory: directory, rank: rank, size: size, hostname: hostname)
  }
}
