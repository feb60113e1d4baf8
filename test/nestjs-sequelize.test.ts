// MultitenantModule with @nestjs/sequelize (sequelize-typescript models): `multitenant: {...}` installs the
// plugin on the module's connection at start, and a controller's queries are scoped per request.
import 'reflect-metadata';
import { Controller, Get, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getConnectionToken, SequelizeModule } from '@nestjs/sequelize';
import test from 'ava';
import { Column, DataType, Model, PrimaryKey, type Sequelize, Table } from 'sequelize-typescript';
import { CurrentTenant, MultitenantModule, WithoutTenant } from '../src/hosts/nestjs';
import { getCurrentTenantId, withoutTenant } from '../src/index';
import { stateOf } from '../src/state';
import { createTestDatabase } from './helpers/db';
import { request } from './helpers/http';

@Table({ tableName: 'nest_notes', tenantKey: 'account_id', timestamps: false })
class Note extends Model {
  @PrimaryKey @Column(DataType.INTEGER) declare account_id: number;
  @PrimaryKey @Column(DataType.INTEGER) declare id: number;
  @Column(DataType.STRING) declare body: string;
}

@Controller('notes')
class NotesController {
  @Get() async list(@CurrentTenant() account: number) {
    return { account: account ?? null, notes: (await Note.findAll({ order: [['id', 'ASC']] })).map((n) => n.body) };
  }
  @Post() async create() {
    const made = await Note.create({ id: 100 + Math.floor(Math.random() * 1000), body: 'new' });
    return { account: getCurrentTenantId(), stamped: made.account_id };
  }
  @WithoutTenant() @Get('all') async all() {
    return { count: await Note.count() };
  }
}

test('with @nestjs/sequelize: the plugin is installed on its connection, and every request is scoped', async (t) => {
  const db = await createTestDatabase();
  @Module({
    imports: [
      SequelizeModule.forRoot({ dialect: 'postgres', uri: db.url, models: [Note], logging: false, pool: { max: db.maxConnections } }),
      MultitenantModule.forRootAsync({
        useFactory: async () => ({
          resolveTenant: (req: { headers: Record<string, string | undefined> }) => req.headers['x-account'],
          required: false,
          multitenant: { strict: true, notice: false },
        }),
      }),
    ],
    controllers: [NotesController],
  })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  try {
    await app.init(); // lifecycle hooks: the plugin is installed here
    const sequelize = app.get<Sequelize>(getConnectionToken() as string);
    t.is(stateOf(sequelize)?.options.strict, true, 'multitenant() installed with the given options');
    await sequelize.sync();
    await withoutTenant(() =>
      Note.bulkCreate([
        { account_id: 1, id: 1, body: 'a1' },
        { account_id: 2, id: 1, body: 'b1' },
        { account_id: 2, id: 2, body: 'b2' },
      ]),
    );
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    t.deepEqual((await request(`${url}/notes`, { headers: { 'x-account': '2' } })).body, { account: '2', notes: ['b1', 'b2'] });
    t.deepEqual((await request(`${url}/notes`, { headers: { 'x-account': '1' } })).body, { account: '1', notes: ['a1'] });
    const created = await request(`${url}/notes`, { method: 'POST', headers: { 'x-account': '1' } });
    t.deepEqual(created.body, { account: '1', stamped: 1 });
    // strict mode: a request with no tenant is refused by the library (MissingTenantError → 500 here)
    t.is((await request(`${url}/notes`)).status, 500);
    t.deepEqual((await request(`${url}/notes/all`, { headers: { 'x-account': '1' } })).body, { count: 4 });
  } finally {
    await app.close();
    await db.drop();
  }
});
