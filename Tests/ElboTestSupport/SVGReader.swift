import Foundation
import XCTest

/// Parses `svg` with Python's xml.etree (so a malformed document fails the test) and returns,
/// per `<g class="series">` of an `ElboReport.Plot`, its name and the number of drawn elements
/// (paths, polygons, circles) — the test's view of what was drawn.
public func svgSeries(_ svg: String) throws -> [String: Int] {
  let script = """
    import sys, xml.etree.ElementTree as ET
    root = ET.fromstring(sys.stdin.read())
    ns = '{http://www.w3.org/2000/svg}'
    assert root.tag == ns + 'svg', root.tag
    for g in root.iter(ns + 'g'):
        if g.get('class') == 'series':
            print(g.get('data-name') + '\\t' + str(len(list(g))))
    """
  var out: [String: Int] = [:]
  for line in try python(script, stdin: svg).split(separator: "\n") {
    let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
    out[String(parts[0]), default: 0] += Int(parts[1])!
  }
  return out
}
