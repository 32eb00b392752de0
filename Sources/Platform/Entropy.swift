/// getrandom(2) (glibc 2.25+): Swift's Glibc module does not export <sys/random.h>.
@_silgen_name("getrandom")
private func systemGetRandom(_ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: UInt32) -> Int

/// Fills `buffer` with bytes from the kernel's random number generator (getrandom(2), no flags:
/// the pool is initialised on any running host). Returns how many bytes it filled: the whole buffer,
/// or fewer if the call failed (never a negative count).
public func fillWithEntropy(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
  var filled = 0
  while filled < buffer.count {
    let result = retryingOnInterrupt { systemGetRandom(buffer.baseAddress! + filled, buffer.count - filled, 0) }
    guard result > 0 else { break }
    filled += result
  }
  return filled
}
