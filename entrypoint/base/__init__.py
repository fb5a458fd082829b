"""The ground floor: typed errors, durable file writes, fault points, signals, quoting names.

Owns nothing about migrations or databases; imports only the standard library.
"""
