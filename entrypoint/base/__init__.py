"""The ground floor: typed errors, durable file writes, fault points, signals, quoting names,
and the environment contract with the host-side deploy (contract.py, which deploy imports too).

Owns nothing about migrations or databases; imports only the standard library.
"""
