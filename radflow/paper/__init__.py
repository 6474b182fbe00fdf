"""From a run to a paper: what a journal and a data archive ask for, filled from the run itself.

- `facts`: what the run established (cohort, scanners and acquisition, ROIs, settings per modality, features,
  analyses, software, data sources), read from its tables, sidecars, settings files and config;
- `dictionary`: the feature dictionary (results/paper/features.tsv): every column of the features table with its
  IBSI name and code, class, unit (UCUM) and the settings it was computed with;
- `methods`: the methods paragraphs (results/paper/methods.md);
- `checklist`: the IBSI-1 reporting items, CLEAR and METRICS, each with what the run established or `author`
  (results/paper/reporting_checklist.tsv);
- `cite`: what to cite for the run (results/paper/cite.md).
"""
