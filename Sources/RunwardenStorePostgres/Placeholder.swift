// PostgresRunStore lives here (being written).
