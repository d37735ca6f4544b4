"""Importers of the official CMS files, one module per source, and what they share.

`claims-validator rules import` (`rebuild`: AOC workbook, RVU file, place-of-service code set)
and `claims-validator rules import-mue` (`mue`) write the derived files of a table directory.
"""
