"""Passes over the AST and IR: elaborate (resolve), shapes, costs, validate."""
