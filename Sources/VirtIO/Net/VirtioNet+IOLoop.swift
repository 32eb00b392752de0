import AsyncIO
import Platform

extension VirtioNet {
  /// A device whose backend is watched on `loop`, the I/O thread (IOCB_CMD_POLL).
  public convenience init(backend: FileDescriptor, mac: [UInt8], loop: IOLoop, queueSize: UInt16 = 256) {
    self.init(backend: backend, mac: mac, watch: { handler in
      let watch = loop.watch(backend.rawValue) { _ in handler() }
      return { loop.unwatch(watch) }
    }, queueSize: queueSize)
  }
}
