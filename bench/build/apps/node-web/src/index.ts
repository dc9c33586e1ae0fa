import express from "express";
import { chunk } from "lodash";
import pino from "pino";
import { z } from "zod";

const log = pino();
const Query = z.object({ size: z.coerce.number().int().positive().default(2) });

const app = express();

app.get("/chunks", (req, res) => {
  const { size } = Query.parse(req.query);
  res.json(chunk([1, 2, 3, 4, 5, 6, 7], size));
});

app.listen(8080, () => log.info("listening on 8080"));
