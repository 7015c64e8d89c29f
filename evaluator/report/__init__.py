"""Renderers of an Assessment: terminal table, JSON file."""
