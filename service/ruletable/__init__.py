"""The rule table: CMS-derived and curated data, validated at load, compiled into plain lookups.

- `file_models` (and `file_models_payers`, `file_models_visits`), `code_files`, `codes`: the
  files of a table directory and the model of each;
- `files`, `load`, `load_policies`, `icd10cm`: reading, validating and compiling them;
- `compiled`: the frozen table the engine reads (the only part it reads);
- `importers`: the official CMS files -> the derived files, one module per source.
"""
