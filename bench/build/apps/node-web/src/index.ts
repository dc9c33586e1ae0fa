import "dotenv/config";
import compression from "compression";
import cors from "cors";
import { addDays, formatISO } from "date-fns";
import express from "express";
import helmet from "helmet";
import { groupBy, sumBy } from "lodash";
import pino from "pino";
import pinoHttp from "pino-http";
import { v4 as uuidv4 } from "uuid";
import { z } from "zod";

const log = pino();
const port = Number(process.env.PORT ?? 8080);

const OrderInput = z.object({
  customer: z.string().min(1),
  items: z.array(z.object({ sku: z.string().min(1), qty: z.number().int().positive(), price: z.number().nonnegative() })).min(1),
});
type Order = z.infer<typeof OrderInput> & { id: string; createdAt: string; dueAt: string };

// In-memory store: the real service keeps orders in Postgres (pg) and caches totals in Redis (ioredis).
const orders: Order[] = [];

const app = express();
app.use(helmet());
app.use(cors());
app.use(compression());
app.use(express.json());
app.use(pinoHttp({ logger: log }));

app.get("/health", (_req, res) => {
  res.json({ status: "ok", orders: orders.length });
});

app.post("/orders", (req, res) => {
  const parsed = OrderInput.safeParse(req.body);
  if (!parsed.success) {
    res.status(400).json({ errors: parsed.error.issues });
    return;
  }
  const now = new Date();
  const order: Order = { ...parsed.data, id: uuidv4(), createdAt: formatISO(now), dueAt: formatISO(addDays(now, 3)) };
  orders.push(order);
  res.status(201).json(order);
});

app.get("/orders/summary", (_req, res) => {
  const byCustomer = groupBy(orders, (o) => o.customer);
  res.json(
    Object.entries(byCustomer).map(([customer, list]) => ({
      customer,
      orders: list.length,
      total: sumBy(list, (o) => sumBy(o.items, (i) => i.qty * i.price)),
    })),
  );
});

app.listen(port, () => log.info(`listening on ${port}`));
