-- migrate:allow index-without-concurency
CREATE TABLE t (id int);
