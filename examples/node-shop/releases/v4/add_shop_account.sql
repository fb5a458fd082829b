-- Release v4: no schema change, a data migration (drizzle-kit generate --custom writes the file,
-- this is its body): the shop's own account, which answers reviews.
INSERT INTO `users` (`email`, `name`) VALUES ('shop@example.com', 'The shop');
