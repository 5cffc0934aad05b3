"""The one wording layer: decisions (service.policy) are turned into words here and only here, for the
cards, the SMART app and its letter, and the command line. `numbers` formats every number, unit and
centile; `evidence` words one piece of evidence."""
