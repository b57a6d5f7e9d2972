"""Mutation fuzzing of the capture readers and every stage behind them (see campaign.py)."""
