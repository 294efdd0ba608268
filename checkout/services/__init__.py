"""Writes. Views, consumers and commands parse their input, call one service, and render."""
