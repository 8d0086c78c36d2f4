"""The network half of the engine's OS layer: IPAM (pure), hosts/resolv.conf
text (pure), and bridges, veth pairs and iptables rules (netlink + iptables).

The pure modules import nothing from the OS side, so the engine can plan a
network (pick a subnet, allocate an address, render files) without privileges.
"""
