"""Operations: kinds and states, their index (store, records), runner, JSONL log, owner liveness, and locks."""
