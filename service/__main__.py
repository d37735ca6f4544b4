"""`python -m service ...` is `claims-validator ...`."""

from service.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
