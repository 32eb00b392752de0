import Devices
import Testing

/// The boot-status page as the firmware drives it: a reason one byte at a time, then a code.
@Suite struct BootStatusTests {
  func report(_ reason: some Sequence<UInt8>, code: UInt32, to page: BootStatus) {
    for byte in reason { page.write(offset: BootStatus.Register.reason, size: 1, value: UInt64(byte)) }
    page.write(offset: BootStatus.Register.failureCode, size: 4, value: UInt64(code))
  }

  @Test func noFailureUntilACodeIsWritten() {
    let page = BootStatus()
    #expect(page.failure == nil)
    #expect(page.read(offset: 0, size: 4) == 0)
    for byte in "partial".utf8 { page.write(offset: 4, size: 1, value: UInt64(byte)) }
    #expect(page.failure == nil)  // a reason alone is no failure
    page.write(offset: 0, size: 4, value: 0)
    #expect(page.failure == nil)
  }

  @Test func keepsTheCodeAndTheReason() {
    let page = BootStatus()
    report("partition table: no GPT signature".utf8, code: 1, to: page)
    #expect(page.failure == BootStatus.Failure(code: 1, reason: "partition table: no GPT signature"))
    #expect(page.read(offset: 0, size: 4) == 1)
    #expect(page.read(offset: 4, size: 1) == 0)
    // The code is 32 bits: wider writes keep the low half.
    page.write(offset: 0, size: 8, value: 0xFFFF_FFFF_0000_0002)
    #expect(page.failure?.code == 2)
  }

  @Test func theReasonIsBoundedAndSanitized() {
    let page = BootStatus()
    let hostile: [UInt8] = Array("ok\tline\r\nend\u{1B}[31m".utf8) + [0x00, 0x7F, 0xC3, 0xA9]
    report(hostile, code: 1, to: page)
    #expect(page.failure?.reason == "ok line  end?[31m????")

    let long = BootStatus()
    report([UInt8](repeating: 0x41, count: 10_000), code: 2, to: long)
    #expect(long.failure?.reason == String(repeating: "A", count: BootStatus.maximumReasonLength))
    #expect(BootStatus.maximumReasonLength == 200)
    // A wide write to the byte port sends its low byte only.
    let wide = BootStatus()
    wide.write(offset: 4, size: 4, value: 0x4342_4141)
    wide.write(offset: 0, size: 4, value: 1)
    #expect(wide.failure?.reason == "A")
  }

  @Test func theRestOfThePageDoesNothing() {
    let page = BootStatus()
    page.write(offset: 8, size: 4, value: 5)
    page.write(offset: 0xFFC, size: 4, value: 5)
    #expect(page.failure == nil)
    #expect(page.read(offset: 8, size: 4) == 0)
    #expect(BootStatus.size == 0x1000)
  }
}
