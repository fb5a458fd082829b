// Step 0005: drop users.name.
// Full schema after this step; see 0000_init.ts for the starting point.
import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

export const users = sqliteTable('users', {
  id: integer('id').primaryKey(),
  email: text('email').notNull().unique(),
});

export const products = sqliteTable('products', {
  id: integer('id').primaryKey(),
  title: text('title').notNull(),
  price: integer('price').notNull(),
  sku: text('sku').notNull().default(''),
});

export const orders = sqliteTable('orders', {
  id: integer('id').primaryKey(),
  userId: integer('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  productId: integer('product_id')
    .notNull()
    .references(() => products.id),
  quantity: integer('quantity').notNull().default(1),
});

export const reviews = sqliteTable(
  'reviews',
  {
    id: integer('id').primaryKey(),
    productId: integer('product_id')
      .notNull()
      .references(() => products.id, { onDelete: 'cascade' }),
    body: text('body').notNull(),
    stars: integer('stars').notNull().default(5),
  },
  (t) => [index('reviews_product_idx').on(t.productId)],
);
