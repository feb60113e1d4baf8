// The host-suite app on NestJS 11 with MultitenantModule, on the Express and the Fastify adapter.
// (Decorators without emitted metadata — tsx does not emit it —: nothing is injected by type.)
import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ArgumentsHost,
  Body,
  Catch,
  Controller,
  type ExceptionFilter,
  Get,
  HttpCode,
  type MiddlewareConsumer,
  Module,
  type NestMiddleware,
  Post,
  Req,
  Res,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { CurrentTenant, MultitenantModule, RequireTenant, WithoutTenant } from '../../../src/hosts/nestjs';
import { getCurrentTenantId, setCurrentTenant } from '../../../src/index';
import type { Fixture } from '../fixture';
import { errorReply, type Host, productsOf, pulled, pushed, resolveHeader } from '../host-suite';

let f: Fixture;
type AnyReq = { headers: Record<string, string | undefined>; socket?: { remotePort?: number }; raw?: { socket?: { remotePort?: number } } };
const portOf = (req: AnyReq) => req.socket?.remotePort ?? req.raw?.socket?.remotePort;

/** A text stream as the response, on either adapter (Fastify's reply, or Express's response). */
function sendStream(res: Record<string, unknown>, out: NodeJS.ReadableStream): void {
  if ('raw' in res) {
    (res.header as (k: string, v: string) => void)('content-type', 'text/plain');
    (res.send as (s: unknown) => void)(out);
  } else {
    (res.setHeader as (k: string, v: string) => void)('content-type', 'text/plain');
    out.pipe(res as never);
  }
}

@Controller()
class ProductsController {
  @Get('whoami') whoami(@Req() req: AnyReq) {
    return { tenant: getCurrentTenantId() ?? null, port: portOf(req) };
  }
  @RequireTenant() @Get('required/whoami') requiredWhoami(@Req() req: AnyReq) {
    return { tenant: getCurrentTenantId() ?? null, port: portOf(req) };
  }
  @Get('products') async list() {
    return { tenant: getCurrentTenantId() ?? null, rows: await productsOf(f) };
  }
  @Post('products') @HttpCode(201) async create(@Body() body: { name: string }) {
    const made = await f.Product.create({ name: body.name });
    return { tenant: getCurrentTenantId(), store_id: made.get('store_id') };
  }
  @Get('stream') stream(@Res() res: Record<string, unknown>) {
    sendStream(res, pushed(f));
  }
  @Get('set/whoami') setWhoami(@Req() req: AnyReq) {
    return { tenant: getCurrentTenantId() ?? null, port: portOf(req) };
  }
  @Post('set/products') @HttpCode(201) async setProducts(@Body() body: { name: string; wait?: number }) {
    await sleep(Number(body.wait ?? 0));
    const made = await f.Product.create({ name: body.name });
    await sleep(Number(body.wait ?? 0));
    const rows = await f.Product.findAll({ attributes: ['store_id'] });
    return { tenant: getCurrentTenantId() ?? null, made: made.get('store_id'), seen: rows.map((r) => r.get('store_id')) };
  }
  @Get('pull') pull(@Res() res: Record<string, unknown>) {
    sendStream(res, pulled(f));
  }
  @Get('handler-set') handlerSet(@Req() req: AnyReq) {
    const before = getCurrentTenantId() ?? null;
    const h = req.headers['x-set-store'];
    if (h) setCurrentTenant(Number(h));
    return { before, after: getCurrentTenantId() ?? null };
  }
  @Get('boom') boom() {
    throw new Error('handler threw');
  }
  @Get('boom-async') async boomAsync() {
    await sleep(1);
    throw new Error('async handler threw');
  }
  @Get('param') param(@CurrentTenant() tenant: unknown) {
    return { tenant: tenant ?? null };
  }
  @WithoutTenant() @Get('admin/count') async adminCount() {
    return { tenant: getCurrentTenantId() ?? null, count: await f.Product.count() };
  }
}

@Catch()
class Errors implements ExceptionFilter {
  catch(err: unknown, host: ArgumentsHost) {
    const res = host.switchToHttp().getResponse() as {
      status?: (n: number) => { json?: (b: unknown) => void; send?: (b: unknown) => void };
      code?: (n: number) => { send(b: unknown): void };
    };
    const { status, body } = errorReply((err as { cause?: unknown })?.cause ?? err, getCurrentTenantId());
    if (res.code) res.code(status).send(body);
    else res.status?.(status).json?.(body);
  }
}

/** A later middleware that sets the tenant of the request it runs in (the django-multitenant pattern). */
class SetTenant implements NestMiddleware {
  use(req: AnyReq, _res: unknown, next: () => void) {
    const h = req.headers['x-set-store'];
    if (h) setCurrentTenant(Number(h));
    next();
  }
}

@Module({
  imports: [MultitenantModule.forRoot({ resolveTenant: (req: AnyReq) => resolveHeader(req.headers['x-store-id']) })],
  controllers: [ProductsController],
})
class AppModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(SetTenant).forRoutes('set/*path');
  }
}

export function nestHost(adapter: 'express' | 'fastify'): Host {
  return {
    name: `nestjs 11 (${adapter})`,
    async start(fixture: Fixture) {
      f = fixture;
      const app = await NestFactory.create(AppModule, adapter === 'express' ? new ExpressAdapter() : new FastifyAdapter(), {
        logger: false,
      });
      app.useGlobalFilters(new Errors());
      await app.listen(0, '127.0.0.1');
      const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
      return { url, close: () => app.close() };
    },
  };
}
