"""Intake: turning files that people send into `claim.submitted` events.

`x12_read` walks an X12 file with pyx12 (parsing and HIPAA validation), `x12_claims` maps the
segments of each 837P claim onto the event contract (a pure function of the segments), and
`ingest` is the `claims-validator ingest` command around them.
"""
