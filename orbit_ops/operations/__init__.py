"""Operations: their index, runner, JSONL event log, the workspace lock."""
