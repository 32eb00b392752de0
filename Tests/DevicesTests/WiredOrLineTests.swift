@testable import Devices
import Testing

/// Devices sharing one INTx line: the line stays high while any of them holds it.
@Suite struct WiredOrLineTests {
  @Test func highWhileAnySourceIs() {
    let line = RecordedLine()
    let shared = WiredOrLine(line)
    let disk = shared.source()
    let share = shared.source()
    disk.set(level: true)
    share.set(level: true)
    disk.set(level: false)  // the disk's ISR read: the share's interrupt is still pending
    #expect(line.levels.withLock { $0 } == [true])
    share.set(level: false)
    #expect(line.levels.withLock { $0 } == [true, false])
  }

  @Test func drivesOnlyChanges() {
    let line = RecordedLine()
    let shared = WiredOrLine(line)
    let a = shared.source()
    a.set(level: false)
    a.set(level: true)
    a.set(level: true)
    a.set(level: false)
    #expect(line.levels.withLock { $0 } == [true, false])
  }
}
