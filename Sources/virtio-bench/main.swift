// virtio-bench: 4 KiB random reads and writes through the whole virtio-blk path (driver harness ->
// split virtqueue -> virtio-pci transport -> virtio-blk -> libaio I/O thread -> file) next to raw
// libaio on the same file, in the same run, at queue depths 1 and 32. Prints IOPS and the ratio.
//
//   swift run -c release --scratch-path .build-virtio virtio-bench [--direct] [--seconds S] [--size MiB] [--file PATH]
//
// Not a test: figures depend on the machine; the target is a ratio of at least 0.85 at QD32.
import AsyncIO
import CLibAIO
import Devices
import Dispatch
import GuestMemory
import Platform
import TestSupport
import VirtIO

struct Options {
  var direct = false
  var seconds = 2.0
  var sizeMiB = 256
  var file = "/var/tmp/virtio-bench.img"
  var depths = [1, 32]
  var pollNanoseconds: UInt64 = 0
  var rounds = 5
  var only: String?
}

var options = Options()
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
  switch argument {
  case "--direct": options.direct = true
  case "--seconds": options.seconds = Double(arguments.popFirst() ?? "") ?? options.seconds
  case "--size": options.sizeMiB = Int(arguments.popFirst() ?? "") ?? options.sizeMiB
  case "--file": options.file = arguments.popFirst() ?? options.file
  case "--rounds": options.rounds = max(1, Int(arguments.popFirst() ?? "") ?? 1)
  case "--only": options.only = arguments.popFirst()
  case "--poll-ns": options.pollNanoseconds = UInt64(arguments.popFirst() ?? "") ?? 0
  case "--depths": options.depths = (arguments.popFirst() ?? "").split(separator: ",").compactMap { Int($0) }
  default:
    print("usage: virtio-bench [--direct] [--seconds S] [--size MiB] [--file PATH] [--depths 1,32] [--rounds N] [--only raw|device] [--poll-ns N]")
    exit(2)
  }
}

/// xorshift64*: cheap, so the generator does not weigh on either side.
struct FastRandom {
  var state: UInt64 = 0x9E37_79B9_7F4A_7C15
  mutating func next() -> UInt64 {
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    return state &* 2_685_821_657_736_338_717
  }
}

let blockSize = 4096
let fileSize = options.sizeMiB << 20
let blocks = UInt64(fileSize / blockSize)

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

// The file: filled with data so reads are real reads (not holes).
do {
  let fd = try FileDescriptor.open(options.file, O_RDWR | O_CREAT)
  defer { fd.close() }
  if try Int(fd.status().st_size) != fileSize {
    let chunk = [UInt8](repeating: 0xA5, count: 1 << 20)
    for index in 0..<(fileSize >> 20) { try chunk.withUnsafeBytes { try fd.write($0, at: Int64(index << 20)) } }
    ftruncate(fd.rawValue, off_t(fileSize))
  }
  try fd.sync()
} catch {
  print("cannot create \(options.file): \(error)")
  exit(1)
}

/// Raw libaio: QD operations kept in flight with io_submit / io_getevents.
@MainActor func rawLibaio(write: Bool, depth: Int, seconds: Double) -> Double {
  guard let file = try? FileDescriptor.open(options.file, O_RDWR | (options.direct ? clibaio_o_direct : 0)) else { return 0 }
  defer { file.close() }
  let fd = file.rawValue
  var context: io_context_t?
  guard io_setup(Int32(depth * 2), &context) == 0, let context else { return 0 }
  defer { io_destroy(context) }
  var random = FastRandom()
  let iocbs = UnsafeMutablePointer<iocb>.allocate(capacity: depth)
  var buffers: [UnsafeMutableRawPointer] = []
  for _ in 0..<depth {
    var raw: UnsafeMutableRawPointer?
    posix_memalign(&raw, 4096, blockSize)
    memset(raw!, 0x5A, blockSize)
    buffers.append(raw!)
  }
  defer { buffers.forEach { free($0) }; iocbs.deallocate() }
  func prepare(_ slot: Int) -> UnsafeMutablePointer<iocb> {
    let offset = Int64((random.next() % blocks) * UInt64(blockSize))
    if write {
      io_prep_pwrite(iocbs + slot, fd, buffers[slot], blockSize, offset)
    } else {
      io_prep_pread(iocbs + slot, fd, buffers[slot], blockSize, offset)
    }
    iocbs[slot].data = UnsafeMutableRawPointer(bitPattern: slot + 1)
    return iocbs + slot
  }
  var pointers: [UnsafeMutablePointer<iocb>?] = (0..<depth).map { prepare($0) }
  _ = io_submit(context, depth, &pointers)
  let events = UnsafeMutablePointer<io_event>.allocate(capacity: depth)
  defer { events.deallocate() }
  var completed = 0
  var inFlight = depth
  let start = now()
  var end = start
  while true {
    let count = Int(io_getevents(context, 1, depth, events, nil))
    guard count > 0 else { continue }
    completed += count
    inFlight -= count
    end = now()
    if end - start >= seconds { break }
    var again: [UnsafeMutablePointer<iocb>?] = []
    for index in 0..<count { again.append(prepare(Int(bitPattern: events[index].data) - 1)) }
    inFlight += Int(io_submit(context, count, &again))
  }
  // Drain what is still in flight before the buffers go.
  var timeout = timespec(tv_sec: 5, tv_nsec: 0)
  while inFlight > 0 {
    let count = Int(io_getevents(context, inFlight, depth, events, &timeout))
    guard count > 0 else { break }
    inFlight -= count
  }
  return Double(completed) / (end - start)
}


/// The whole device path: a guest driver harness posts virtio-blk requests; the device serves them
/// on its I/O thread through libaio; completions come back through the used ring and INTx.
@MainActor func devicePath(write: Bool, depth: Int, seconds: Double) -> Double {
  let ramBase: UInt64 = 0x8000_0000
  let ramSize: UInt64 = 64 << 20
  guard let memory = try? GuestMemory(ranges: [(ramBase, ramSize)]),
    let loop = try? IOLoop(name: "bench-io", pollNanoseconds: options.pollNanoseconds),
    let file = try? BlockFile(path: options.file, readOnly: false, direct: options.direct)
  else { print("device setup failed"); return 0 }
  let device = VirtioBlock(file: file, loop: loop, queues: 1, serial: "bench")
  try? loop.start()
  defer { loop.stop() }
  let line = RecordingInterruptLine()
  let transport = VirtioPCITransport(device: device, memory: memory, interrupt: line, barAddress: 0x5000_0000)
  let driver = VirtioPCIDriverHarness(
    transport: transport, memory: memory, interrupt: line, allocator: GuestAllocator(base: ramBase, size: ramSize))
  driver.start(queueCount: 1, size: 256)
  var random = FastRandom()
  // One header, 4 KiB buffer and status byte per slot; a chain's head tells its slot.
  struct Slot { var header: UInt64; var data: UInt64; var status: UInt64 }
  let slots = (0..<depth).map { _ in
    Slot(header: driver.allocate(16), data: driver.allocate(blockSize, alignment: 4096), status: driver.allocate(1))
  }
  // Indexed by head (a dictionary here would weigh on the device side only).
  var slotOfHead = [Int](repeating: -1, count: 1 << 16)
  func post(_ slot: Int) {
    let s = slots[slot]
    memory.put(UInt32(write ? 1 : 0), at: s.header)
    memory.put((random.next() % blocks) * UInt64(blockSize / 512), at: s.header + 8)
    let head = driver.post(0, [
      .init(address: s.header, length: 16, isWritable: false),
      .init(address: s.data, length: UInt32(blockSize), isWritable: !write),
      .init(address: s.status, length: 1, isWritable: true),
    ])!
    slotOfHead[Int(head)] = slot
  }
  for slot in 0..<depth { post(slot) }
  driver.notifyIfNeeded(0)
  var completed = 0
  let start = now()
  var end = start
  var errors = 0
  while true {
    var reposted = 0
    while let used = driver.popUsed(0) {
      completed += 1
      let slot = slotOfHead[Int(used.head)]
      guard slot >= 0 else { continue }
      slotOfHead[Int(used.head)] = -1
      if memory.get8(at: slots[slot].status) != 0 { errors += 1 }
      post(slot)
      reposted += 1
    }
    end = now()
    if end - start >= seconds { break }
    if reposted > 0 {
      driver.notifyIfNeeded(0)
    } else if line.wait(seconds: 1) {
      _ = driver.readISR()
    }
  }
  if errors > 0 { print("  (\(errors) requests failed)") }
  // Let the requests still in flight finish before the loop stops.
  _ = driver.waitUsed(0, count: depth, seconds: 5)
  return Double(completed) / (end - start)
}

/// CPU seconds (user + system) this process has used.
func cpuSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func column(_ text: String, _ width: Int) -> String {
  String(repeating: " ", count: max(0, width - text.count)) + text
}

func fixed2(_ value: Double) -> String {
  let hundredths = Int((value * 100).rounded())
  return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
}

/// The runs of one side of one figure: every run's IOPS, and the best run with its CPU cost per
/// operation.
struct Runs {
  var best = (iops: 0.0, cpu: 0.0)
  var iops: [Double] = []

  /// Runs `body` (which returns IOPS) and records it with the CPU time it took per operation.
  @MainActor mutating func add(_ body: () -> Double) {
    let before = cpuSeconds()
    let result = body()
    let cpu = (cpuSeconds() - before) / max(1, result * options.seconds) * 1e6
    if result > best.iops { best = (result, cpu) }
    iops.append(result)
  }
}

/// The median of `values` (the mean of the middle two for an even count).
func median(_ values: [Double]) -> Double {
  guard !values.isEmpty else { return 0 }
  let sorted = values.sorted()
  let middle = sorted.count / 2
  return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

print("virtio-bench: 4 KiB random I/O on \(options.file) (\(options.sizeMiB) MiB, \(options.direct ? "O_DIRECT" : "page cache")), \(options.seconds) s per run, best of \(options.rounds) alternating rounds (median IOPS and ratio after it)")
print("operation   QD   raw libaio IOPS (CPU us/op)   device path IOPS (CPU us/op)   ratio   median raw / device   ratio")
for write in [false, true] {
  for depth in options.depths {
    var raw = Runs()
    var device = Runs()
    for _ in 0..<options.rounds {
      if options.only != "device" { raw.add { rawLibaio(write: write, depth: depth, seconds: options.seconds) } }
      if options.only != "raw" { device.add { devicePath(write: write, depth: depth, seconds: options.seconds) } }
    }
    let ratio = raw.best.iops > 0 ? device.best.iops / raw.best.iops : 0
    let rawMedian = median(raw.iops)
    let deviceMedian = median(device.iops)
    let medianRatio = rawMedian > 0 ? deviceMedian / rawMedian : 0
    let name = write ? "randwrite " : "randread  "
    print("\(name) \(column(String(depth), 4)) \(column(String(Int(raw.best.iops.rounded())), 17)) (\(column(fixed2(raw.best.cpu), 7)))  \(column(String(Int(device.best.iops.rounded())), 18)) (\(column(fixed2(device.best.cpu), 7)))   \(fixed2(ratio))   \(column(String(Int(rawMedian.rounded())), 9)) / \(column(String(Int(deviceMedian.rounded())), 7))   \(fixed2(medianRatio))")
  }
}
