"""``python -m audited_ft`` (also what ``accelerate launch -m audited_ft train RUN_DIR`` starts on every GPU)."""

from audited_ft.cli import main

if __name__ == "__main__":
    main()
