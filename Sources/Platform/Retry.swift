/// Calls `body`, a system call in C's convention (-1 and `errno` on failure), again for as long as
/// it fails with EINTR (a signal arrived before it could finish), and returns its result: a
/// successful one, or -1 with `errno` set to anything but EINTR.
@inlinable
public func retryingOnInterrupt<Result: FixedWidthInteger & SignedInteger>(_ body: () -> Result) -> Result {
  while true {
    let result = body()
    if result == -1 && errno == EINTR { continue }
    return result
  }
}

/// Calls `body`, a call in the kernel's convention (its result, or `-errno` on failure), again for
/// as long as it returns `-EINTR`, and returns its result.
@inlinable
public func retryingOnMinusEINTR<Result: FixedWidthInteger & SignedInteger>(_ body: () -> Result) -> Result {
  while true {
    let result = body()
    if result == -Result(EINTR) { continue }
    return result
  }
}
