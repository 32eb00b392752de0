// The one place realm-run imports the C library: every other module imports Platform, which
// re-exports it, and uses ``FileDescriptor``, ``Errno`` and ``retryingOnInterrupt(_:)`` for files.
#if canImport(Glibc)
@_exported import Glibc
#else
#error("realm-run needs glibc (Linux)")
#endif
