"""The network lab: hosts cabled to a switch of the lab's own.

The kernel here has no sch_netem, so the switch forwards Ethernet frames in
user space (a process in the lab's namespace, one packet socket per port) and
does the cable's faults itself: cut, delay, jitter, loss, duplication,
reordering and a rate limit, per port and per direction. `controller.Switch`
drives it from sockplay's event loop; `impairments.parse_cable` reads a
script's `cable` words.
"""
