print("virtio-bench: not yet")
