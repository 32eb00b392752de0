// libFuzzer entry for the launch measurement log reader (`Scripts/fuzz-devices --target
// launch-log`): the input is a whole log, as `realm-run verify --measurement-log` reads a file the
// host (untrusted) wrote.
//
// Invariants: reading ends in a log or a LaunchLogError, never a crash, a hang or an allocation
// beyond a small multiple of the input; a log read has at most the bounded number of events and
// DTB size, and its encoding reads back to the same log.
import RealmMeasurement

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let log = try? RealmLaunchLog(decoding: bytes) else { return 0 }
  invariant(log.events.count <= RealmLaunchLog.maximumEvents, "\(log.events.count) events")
  invariant((log.deviceTree?.count ?? 0) <= RealmLaunchLog.maximumDeviceTreeSize, "a DTB over the limit")
  invariant((try? RealmLaunchLog(decoding: log.encoded())) == log, "a log read does not survive re-encoding")
  return 0
}
