"""Master data a brand brings in from its own systems: catalogue, stores, staff and shifts, targets,
stock (daily positions, movements, batches). ``importer.import_master`` reads a file in any of the
export formats the channel importers read and writes the tables the features already use."""
