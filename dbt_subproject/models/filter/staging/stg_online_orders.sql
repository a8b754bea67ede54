-- Every online order filed under the run's months, classified: valid or rejected (with its reason), with its client's home clinic.
-- A view: hd_orders and rejected_rows read it, each picking the copy of a repeated row that counts (copy_rule).
{{ classified_landed_rows('transactions', 'transaction_ts', revenue_column='revenue') }}
