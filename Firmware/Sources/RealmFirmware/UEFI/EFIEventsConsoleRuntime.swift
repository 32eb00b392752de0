import FirmwareSupport
import FirmwareCore

// MARK: Events (UEFI 2.10 §7.1): timers on the generic counter, polled; no interrupts.

typealias EFINotify = @convention(c) (UInt64, UInt64) -> Void

struct EFIEvents {
  struct Event {
    var id: UInt64
    var type: UInt32
    var notify: UInt64
    var context: UInt64
    var signaled = false
    /// Counter value at which a timer fires (0: not armed), and its period (0: one-shot).
    var deadline: UInt64 = 0
    var period: UInt64 = 0
  }
  static let timer: UInt32 = 0x8000_0000
  static let signalExitBootServices: UInt32 = 0x0000_0201
  var list: [Event] = []
  var nextID: UInt64 = 0x4556_0000
  /// The console's WaitForKey event (never signalled: realm-run's console has no input yet).
  var waitForKey: UInt64 = 0

  mutating func create(type: UInt32, notify: UInt64, context: UInt64) throws(EFIStatus) -> UInt64 {
    guard list.count < 256 else { throw .outOfResources }
    nextID += 16
    list.append(Event(id: nextID, type: type, notify: notify, context: context))
    return nextID
  }

  mutating func close(_ id: UInt64) throws(EFIStatus) {
    guard let i = list.firstIndex(where: { $0.id == id }) else { throw .invalidParameter }
    list.remove(at: i)
  }

  /// SetTimer: 0 cancels, 1 periodic, 2 relative; `time` in 100 ns units.
  mutating func setTimer(_ id: UInt64, kind: UInt32, time: UInt64) throws(EFIStatus) {
    guard let i = list.firstIndex(where: { $0.id == id }), list[i].type & EFIEvents.timer != 0, kind <= 2 else {
      throw .invalidParameter
    }
    let frequency = fw_read_cntfrq()
    let product = time.multipliedFullWidth(by: frequency)
    let ticks = max(product.high == 0 ? product.low / 10_000_000 : UInt64.max / 4, 1)
    list[i].signaled = false
    list[i].deadline = kind == 0 ? 0 : fw_read_cntvct() &+ ticks
    list[i].period = kind == 1 ? ticks : 0
  }

  mutating func signal(_ id: UInt64) throws(EFIStatus) {
    guard let i = list.firstIndex(where: { $0.id == id }) else { throw .invalidParameter }
    list[i].signaled = true
  }

  /// CheckEvent's test: fires a due timer, then takes (clears) the signal.
  mutating func take(_ id: UInt64) throws(EFIStatus) -> Bool {
    guard let i = list.firstIndex(where: { $0.id == id }) else { throw .invalidParameter }
    if list[i].deadline != 0 && fw_read_cntvct() >= list[i].deadline {
      list[i].signaled = true
      list[i].deadline = list[i].period == 0 ? 0 : list[i].deadline &+ list[i].period
    }
    defer { list[i].signaled = false }
    return list[i].signaled
  }

  /// The EVT_SIGNAL_EXIT_BOOT_SERVICES events that have a notification function.
  func exitBootServicesNotifications() -> [Event] {
    list.filter { $0.type == EFIEvents.signalExitBootServices && $0.notify != 0 }
  }
}

@_cdecl("efi_create_event")
func efiCreateEvent(_ type: UInt32, _ tpl: UInt64, _ notify: UInt64, _ context: UInt64, _ event: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let event else { throw .invalidParameter }
    event.pointee = try env.events.create(type: type, notify: notify, context: context)
  }
}

@_cdecl("efi_create_event_ex")
func efiCreateEventEx(_ type: UInt32, _ tpl: UInt64, _ notify: UInt64, _ context: UInt64, _ group: RawPointer?,
                      _ event: Out<UInt64>?) -> UInt64 {
  // EFI_EVENT_GROUP_EXIT_BOOT_SERVICES 27bfa8ba-2eb7-4f42-a27a-0e1339de2e9a is the one group
  // boot loaders use; it behaves as EVT_SIGNAL_EXIT_BOOT_SERVICES.
  let exitGroup = EFIGUID(0x27bf_a8ba, 0x2eb7, 0x4f42, (0xa2, 0x7a, 0x0e, 0x13, 0x39, 0xde, 0x2e, 0x9a))
  let isExit = (try? guid(group)) == exitGroup
  return efiCreateEvent(isExit ? EFIEvents.signalExitBootServices : type, tpl, notify, context, event)
}

@_cdecl("efi_close_event")
func efiCloseEvent(_ event: UInt64) -> UInt64 { efiService { env throws(EFIStatus) in try env.events.close(event) } }

@_cdecl("efi_signal_event")
func efiSignalEvent(_ event: UInt64) -> UInt64 { efiService { env throws(EFIStatus) in try env.events.signal(event) } }

@_cdecl("efi_set_timer")
func efiSetTimer(_ event: UInt64, _ kind: UInt32, _ time: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in try env.events.setTimer(event, kind: kind, time: time) }
}

@_cdecl("efi_check_event")
func efiCheckEvent(_ event: UInt64) -> UInt64 {
  efiService { env throws(EFIStatus) in if !(try env.events.take(event)) { throw .notReady } }
}

@_cdecl("efi_wait_for_event")
func efiWaitForEvent(_ count: UInt64, _ events: Out<UInt64>?, _ index: Out<UInt64>?) -> UInt64 {
  guard count > 0, let events, let index else { return EFIStatus.invalidParameter.rawValue }
  while true {
    for i in 0..<Int(count) {
      let status = efiCheckEvent(events[i])
      if status == EFIStatus.success.rawValue {
        index.pointee = UInt64(i)
        return status
      }
      if status != EFIStatus.notReady.rawValue {
        index.pointee = UInt64(i)
        return status
      }
    }
  }
}

// MARK: Console (SimpleTextOutput on realm-run's console; SimpleTextInput without input yet)

@_cdecl("efi_con_out_output_string")
func efiConOutOutputString(_ this: RawPointer?, _ string: UnsafePointer<UInt16>?) -> UInt64 {
  guard let string else { return EFIStatus.invalidParameter.rawValue }
  var i = 0
  // Bounded: a missing terminator ends at 64 Ki characters.
  while i < 1 << 16, string[i] != 0 {
    let c = string[i]
    _ = putchar(Int32(c < 0x80 ? c : 0x3F))
    i += 1
  }
  return EFIStatus.success.rawValue
}

@_cdecl("efi_con_out_test_string")
func efiConOutTestString(_ this: RawPointer?, _ string: UnsafePointer<UInt16>?) -> UInt64 { EFIStatus.success.rawValue }
@_cdecl("efi_con_out_reset")
func efiConOutReset(_ this: RawPointer?, _ extended: UInt8) -> UInt64 { EFIStatus.success.rawValue }

@_cdecl("efi_con_out_query_mode")
func efiConOutQueryMode(_ this: RawPointer?, _ mode: UInt64, _ columns: Out<UInt64>?, _ rows: Out<UInt64>?) -> UInt64 {
  guard mode == 0, let columns, let rows else { return EFIStatus.unsupported.rawValue }
  columns.pointee = 80
  rows.pointee = 25
  return EFIStatus.success.rawValue
}

@_cdecl("efi_con_out_set_mode")
func efiConOutSetMode(_ this: RawPointer?, _ mode: UInt64) -> UInt64 {
  mode == 0 ? EFIStatus.success.rawValue : EFIStatus.unsupported.rawValue
}

@_cdecl("efi_con_out_set_attribute")
func efiConOutSetAttribute(_ this: RawPointer?, _ attribute: UInt64) -> UInt64 {
  fw_efi_con_out_mode.attribute = Int32(truncatingIfNeeded: attribute & 0x7F)
  return EFIStatus.success.rawValue
}

@_cdecl("efi_con_out_clear_screen")
func efiConOutClearScreen(_ this: RawPointer?) -> UInt64 {
  fw_efi_con_out_mode.cursor_column = 0
  fw_efi_con_out_mode.cursor_row = 0
  return EFIStatus.success.rawValue
}

@_cdecl("efi_con_out_set_cursor_position")
func efiConOutSetCursorPosition(_ this: RawPointer?, _ column: UInt64, _ row: UInt64) -> UInt64 {
  guard column < 80, row < 25 else { return EFIStatus.unsupported.rawValue }
  fw_efi_con_out_mode.cursor_column = Int32(column)
  fw_efi_con_out_mode.cursor_row = Int32(row)
  return EFIStatus.success.rawValue
}

@_cdecl("efi_con_out_enable_cursor")
func efiConOutEnableCursor(_ this: RawPointer?, _ visible: UInt8) -> UInt64 {
  fw_efi_con_out_mode.cursor_visible = visible
  return EFIStatus.success.rawValue
}

@_cdecl("efi_con_in_reset")
func efiConInReset(_ this: RawPointer?, _ extended: UInt8) -> UInt64 { EFIStatus.success.rawValue }
@_cdecl("efi_con_in_read_key_stroke")
func efiConInReadKeyStroke(_ this: RawPointer?, _ key: RawPointer?) -> UInt64 { EFIStatus.notReady.rawValue }

// MARK: Runtime services before ExitBootServices (after it, efi.c's table answers EFI_UNSUPPORTED
// for these; ResetSystem, SetVirtualAddressMap and ConvertPointer are efi.c's, EFIRuntime.swift)

@_cdecl("efi_get_variable")
func efiGetVariable(_ name: UnsafePointer<UInt16>?, _ vendor: RawPointer?, _ attributes: Out<UInt32>?,
                    _ size: Out<UInt64>?, _ data: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let size else { throw .invalidParameter }
    let v = try env.variables.get(name: try ucs2String(name), vendor: try guid(vendor))
    attributes?.pointee = v.attributes.rawValue
    guard size.pointee >= UInt64(v.data.count) else {
      size.pointee = UInt64(v.data.count)
      throw .bufferTooSmall
    }
    size.pointee = UInt64(v.data.count)
    guard !v.data.isEmpty else { return }
    guard let data else { throw .invalidParameter }
    v.data.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: v.data.count) }
  }
}

@_cdecl("efi_set_variable")
func efiSetVariable(_ name: UnsafePointer<UInt16>?, _ vendor: RawPointer?, _ attributes: UInt32,
                    _ size: UInt64, _ data: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard size <= UInt64(env.variables.maximumVariableSize), size == 0 || data != nil else {
      throw size > UInt64(env.variables.maximumVariableSize) ? .outOfResources : .invalidParameter
    }
    let bytes = size == 0 ? [] : Array(UnsafeRawBufferPointer(start: data, count: Int(size)))
    try env.variables.set(name: try ucs2String(name), vendor: try guid(vendor),
                          attributes: EFIVariableAttributes(rawValue: attributes), data: bytes)
  }
}

@_cdecl("efi_get_next_variable_name")
func efiGetNextVariableName(_ size: Out<UInt64>?, _ name: Out<UInt16>?, _ vendor: RawPointer?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let size, let name, let vendor, size.pointee >= 2 else { throw .invalidParameter }
    // The caller's name must be terminated inside its buffer.
    let limit = Int(min(size.pointee / 2, 1 << 15))
    guard let end = (0..<limit).first(where: { name[$0] == 0 }) else { throw .invalidParameter }
    let current = Array(UnsafeBufferPointer(start: name, count: end))
    let next = try env.variables.nextName(after: current, vendor: try guid(vendor))
    let needed = UInt64(next.name.count + 1) * 2
    guard size.pointee >= needed else {
      size.pointee = needed
      throw .bufferTooSmall
    }
    for (i, c) in next.name.enumerated() { name[i] = c }
    name[next.name.count] = 0
    next.vendor.bytes.withUnsafeBytes { vendor.copyMemory(from: $0.baseAddress!, byteCount: 16) }
    size.pointee = needed
  }
}

@_cdecl("efi_query_variable_info")
func efiQueryVariableInfo(_ attributes: UInt32, _ maximumStorage: Out<UInt64>?, _ remaining: Out<UInt64>?,
                          _ maximumSize: Out<UInt64>?) -> UInt64 {
  efiService { env throws(EFIStatus) in
    guard let maximumStorage, let remaining, let maximumSize else { throw .invalidParameter }
    let info = try env.variables.query(attributes: EFIVariableAttributes(rawValue: attributes))
    maximumStorage.pointee = info.maximumStorage
    remaining.pointee = info.remaining
    maximumSize.pointee = info.maximumVariableSize
  }
}

/// A caller's NUL-terminated UCS-2 name (at most 1 Ki characters).
func ucs2String(_ p: UnsafePointer<UInt16>?) throws(EFIStatus) -> [UInt16] {
  guard let p else { throw .invalidParameter }
  var s: [UInt16] = []
  while p[s.count] != 0 {
    guard s.count < 1024 else { throw .invalidParameter }
    s.append(p[s.count])
  }
  return s
}

@_cdecl("efi_get_time") func efiGetTime(_ time: RawPointer?, _ caps: RawPointer?) -> UInt64 { EFIStatus.unsupported.rawValue }
@_cdecl("efi_set_time") func efiSetTime(_ time: RawPointer?) -> UInt64 { EFIStatus.unsupported.rawValue }
@_cdecl("efi_get_wakeup_time")
func efiGetWakeupTime(_ a: RawPointer?, _ b: RawPointer?, _ c: RawPointer?) -> UInt64 { EFIStatus.unsupported.rawValue }
@_cdecl("efi_set_wakeup_time")
func efiSetWakeupTime(_ enable: UInt8, _ time: RawPointer?) -> UInt64 { EFIStatus.unsupported.rawValue }
@_cdecl("efi_get_next_high_monotonic_count")
func efiGetNextHighMonotonicCount(_ count: Out<UInt32>?) -> UInt64 { EFIStatus.unsupported.rawValue }
@_cdecl("efi_update_capsule")
func efiUpdateCapsule(_ a: RawPointer?, _ b: UInt64, _ c: UInt64) -> UInt64 { EFIStatus.unsupported.rawValue }
@_cdecl("efi_query_capsule_capabilities")
func efiQueryCapsuleCapabilities(_ a: RawPointer?, _ b: UInt64, _ c: RawPointer?, _ d: RawPointer?) -> UInt64 {
  EFIStatus.unsupported.rawValue
}
