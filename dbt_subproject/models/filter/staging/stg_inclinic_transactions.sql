-- Every in-clinic row filed under the run's months, classified: valid or rejected (with its reason), with its client's home clinic.
-- A view: inclinic_transactions and rejected_rows read it, each picking the copy of a repeated row that counts (copy_rule).
{{ classified_landed_rows('transactions_inclinic', 'transaction_ts', revenue_column='revenue') }}
