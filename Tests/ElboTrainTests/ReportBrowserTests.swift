import ElboTestSupport
import Foundation
import XCTest

/// A real run's report.html rendered by headless Chromium (Debian's `chromium`, which
/// launch/test installs): it loads without console errors, refers to nothing outside itself,
/// holds the expected sections, and its screenshot shows the plots and the image grids.
final class ReportBrowserTests: XCTestCase {
  static let chromium = "/usr/bin/chromium"

  func testReportRendersInHeadlessChromium() throws {
    // Not a skip: without a browser this check would silently vanish from CI.
    guard FileManager.default.isExecutableFile(atPath: ReportBrowserTests.chromium) else {
      XCTFail("\(ReportBrowserTests.chromium) not found: launch/test installs it "
        + "(apt-get install chromium)")
      return
    }
    let root = scratchDirectory("browser")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let run = root + "/run"
    // One epoch of MNIST-5k (40 steps): train curves, a test point, both image grids.
    let r = try ElboProcess.run(["train", "vae", "--data", "mnist-5k", "--hidden", "32",
                                 "--latent", "4", "--threads", "1", "--epochs", "1",
                                 "--log-every", "5", "--out", run])
    XCTAssertEqual(r.status, 0, r.stderr)
    let url = "file://" + run + "/report.html"
    let browser = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--user-data-dir=\(root)/profile", "--enable-logging=stderr", "--v=0"]

    // The DOM as loaded: sections, inline SVGs, embedded PNGs, and no outside references.
    let dom = try ElboProcess.runTool(ReportBrowserTests.chromium,
                                      browser + ["--dump-dom", url], timeout: 120)
    XCTAssertEqual(dom.status, 0, dom.stderr)
    for id in ["metrics", "plots", "images", "config"] {
      XCTAssertTrue(dom.stdout.contains("<section id=\"\(id)\">"), "section \(id) missing")
    }
    XCTAssertEqual(dom.stdout.components(separatedBy: "<svg ").count - 1, 3)
    XCTAssertEqual(dom.stdout.components(separatedBy: "<img ").count - 1, 2)
    XCTAssertEqual(dom.stdout.components(separatedBy: "src=\"data:image/png;base64,").count - 1, 2)
    for outside in ["http://", "https://", "href=", "url(", "@import", "<script", "<link"] {
      XCTAssertFalse(dom.stdout.contains(outside), "the page refers to '\(outside)'")
    }
    assertNoPageErrors(dom.stderr)

    // The screenshot: a valid PNG of the window, not blank, with the curves and the grids.
    let shot = root + "/report.png"
    let s = try ElboProcess.runTool(ReportBrowserTests.chromium,
                                    browser + ["--screenshot=\(shot)", "--window-size=1280,2400", url],
                                    timeout: 120)
    XCTAssertEqual(s.status, 0, s.stderr)
    assertNoPageErrors(s.stderr)
    let png = try XCTUnwrap(DecodedPNG(try Data(contentsOf: URL(fileURLWithPath: shot))))
    XCTAssertEqual([png.width, png.height], [1280, 2400])
    var colours = Set<UInt32>(), black = 0, blue = 0
    let c = png.channels
    for i in stride(from: 0, to: png.pixels.count, by: c) {
      let (r, g, b) = (png.pixels[i], png.pixels[i + min(1, c - 1)], png.pixels[i + min(2, c - 1)])
      colours.insert(UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b))
      // MNIST backgrounds: the only pure black on the page (text is #222).
      if r < 8 && g < 8 && b < 8 { black += 1 }
      // The first series' colour (#1f77b4), drawn by every training curve.
      if abs(Int(r) - 0x1f) < 12 && abs(Int(g) - 0x77) < 12 && abs(Int(b) - 0xb4) < 12 { blue += 1 }
    }
    print("screenshot: \(colours.count) colours, \(black) black pixels, \(blue) curve pixels")
    XCTAssertGreaterThan(colours.count, 100, "the screenshot looks blank")
    // The 16 training images alone, shown at 2× (56×56 px each), are mostly black background.
    XCTAssertGreaterThan(black, 16 * 56 * 56 / 2, "image grids not rendered")
    XCTAssertGreaterThan(blue, 500, "curves not rendered")
  }

  /// Chromium logs page console messages as "CONSOLE" lines and failed loads with net:: codes;
  /// its other chatter (D-Bus, GPU, sandbox) is about the machine, not the page.
  func assertNoPageErrors(_ stderr: String, file: StaticString = #filePath, line: UInt = #line) {
    let bad = stderr.split(separator: "\n").filter {
      $0.contains(":CONSOLE") || $0.contains("net::ERR") || $0.contains("Failed to load")
    }
    XCTAssertTrue(bad.isEmpty, "page errors:\n\(bad.joined(separator: "\n"))", file: file, line: line)
  }
}
